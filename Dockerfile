# The one image of the deployment: every Airflow process, the Celery workers, and the Spark master and
# worker (pyspark's own Spark distribution), so the Spark driver (in an Airflow worker) and its
# executors run the same Python, the same pyspark and the same libraries by construction.
# Starts from the official slim image (Airflow and the minimum) and installs the project's complete
# lock over it without resolving anything: the lock is the whole set, `pip check` proves it whole.
# Airflow and Python versions are the lock's (a test checks).
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:slim-${AIRFLOW_VERSION}-python${PYTHON_VERSION}
ARG PYTHON_VERSION

USER root
# Spark 4 runs on Java 17. The architecture-neutral link keeps JAVA_HOME valid on amd64 and arm64.
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && ln -s "java-17-openjdk-$(dpkg --print-architecture)" /usr/lib/jvm/java-17
ENV JAVA_HOME=/usr/lib/jvm/java-17

USER airflow
COPY --chown=airflow:root requirements.lock /requirements.lock
RUN pip install --no-cache-dir --no-deps -r /requirements.lock \
 && pip check

# dags/, plugins/, config/ and sql/ are mounted by docker-compose.yaml; plugins/ is on sys.path, so DAG
# files import `from steps.<module> import ...`. Spark runs from the pyspark package, with the
# image's one Python on both ends of a job.
ENV PYTHONPATH=/opt/airflow/plugins \
    SPARK_HOME=/home/airflow/.local/lib/python${PYTHON_VERSION}/site-packages/pyspark \
    PYSPARK_PYTHON=python \
    PYSPARK_DRIVER_PYTHON=python
