"""Business rules shared by the session jobs."""

SESSION_GAP_DAYS = 30
