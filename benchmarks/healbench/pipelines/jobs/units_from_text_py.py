"""Units per order. The shop system sends quantities as text."""

from pyspark.sql import functions as F


def transform(spark):
    items = spark.table("order_items")
    return items.groupBy("order_id").agg(
        F.sum(F.col("qty_text").cast("int")).alias("units"),
        F.count(F.lit(1)).alias("lines"),
    )
