"""Shopping sessions: a customer's orders less than SESSION_GAP_DAYS apart form one session.

The orders feed replays some events, so orders are deduplicated on order_id first.
"""

from pyspark.sql import Window
from pyspark.sql import functions as F

from session_rules import SESSION_GAP_DAYS


def transform(spark):
    orders = spark.table("orders").dropDuplicates(["order_id"])
    by_customer = Window.partitionBy("customer_id").orderBy("order_ts", "order_id")
    gap_days = (F.col("order_ts").cast("long") - F.lag("order_ts").over(by_customer).cast("long")) / 86400
    starts = orders.withColumn("new_session", F.when(gap_days.isNull() | (gap_days > SESSION_GAP_DAYS), 1).otherwise(0))
    numbered = starts.withColumn("session_no", F.sum("new_session").over(by_customer))
    return (
        numbered.groupBy("customer_id", "session_no")
        .agg(
            F.min("order_ts").alias("session_start"),
            F.max("order_ts").alias("session_end"),
            F.count("order_id").alias("orders"),
            F.size(F.collect_set("channel")).alias("channels"),
        )
    )
