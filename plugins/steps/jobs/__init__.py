"""Spark applications, submitted with spark-submit (they run in Spark's driver, not in Airflow)."""
