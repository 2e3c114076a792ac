"""Net price per unit of each order line (line_total is after discount)."""

from pyspark.sql import functions as F


def transform(spark):
    items = spark.table("order_items")
    return items.select("order_id", "line_no", F.round(F.col("line_total") / F.col("quantity"), 2).alias("unit_net"))
