# The Airflow image of the deployment: the official one, plus Java for spark-submit and the
# project's locked requirements. Airflow and Python versions are the lock's (a test checks).
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}

USER root
# spark-submit needs a JVM; 17 is the Java of the Spark image (apache/spark:*-java17-*).
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
ENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64

USER airflow
COPY --chown=airflow:root requirements.lock /requirements.lock
# The lock pins every package, apache-airflow itself included, so nothing else moves.
RUN pip install --no-cache-dir -r /requirements.lock

# dags/, plugins/, config/ and sql/ are mounted by docker-compose.yaml; plugins/ is on sys.path, so DAG
# files import `from steps.<module> import ...`.
ENV PYTHONPATH=/opt/airflow/plugins
