"""Governance: what a heal may do (policy at three levels, budgets, circuit breaker), what it did (the audit trail), and whether its fixes held (post-merge verification)."""
