"""Customers cleaned for analytics: trimmed names, lower-case emails, parsed dates, tenure."""

from pyspark.sql import functions as F

AS_OF = "2025-01-01"


def transform(spark):
    customers = spark.table("customers")
    signup = F.to_date(F.col("signup_date"))
    return customers.select(
        "customer_id",
        F.initcap(F.trim(F.col("name"))).alias("name"),
        F.lower(F.trim(F.col("email"))).alias("email"),
        F.upper(F.col("country")).alias("country"),
        "segment",
        signup.alias("signup_date"),
        F.date_trunc("month", signup).cast("date").alias("signup_month"),
        F.datediff(F.lit(AS_OF).cast("date"), signup).alias("tenure_days"),
    )
