"""Payments per day and method."""

from pyspark.sql import functions as F


def transform(spark):
    payments = spark.table("payments")
    return (
        payments.groupBy(F.to_date("paid_at").alias("day"), "method")
        .agg(F.round(F.sum("amount"), 2).alias("amount"), F.count(F.lit(1)).alias("payments"))
    )
