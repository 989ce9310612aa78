"""A tiny PySpark job for the cluster test: counts words by length, writes one CSV file."""

import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as fn

if __name__ == "__main__":
    output = sys.argv[1]
    spark = SparkSession.builder.appName("word_lengths").getOrCreate()
    sentence = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog"]
    words = spark.createDataFrame([(w,) for w in sentence], ["word"])
    counts = words.groupBy(fn.length("word").alias("length")).count().orderBy("length")
    # A Python UDF makes the executors run Python too: the worker's Python must match the driver's.
    shout = fn.udf(lambda n: f"len{n}")
    counts.withColumn("label", shout("length")).coalesce(1).write.mode("overwrite").csv(output, header=True)
    spark.stop()
