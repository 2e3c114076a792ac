"""Average net price per unit of every order (line_total is after discount)."""

from pyspark.sql import functions as F


def transform(spark):
    items = spark.table("order_items")
    per_order = items.groupBy("order_id").agg(F.sum("line_total").alias("total"), F.sum("quantity").alias("units"))
    return per_order.select("order_id", "units", F.round(F.col("total") / F.col("units"), 2).alias("avg_unit_net"))
