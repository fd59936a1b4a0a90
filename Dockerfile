# mq in a container: `docker build -t mq .` then
#   docker run -p 7711:7711 -v mq-data:/data mq
# Settings come from MQ_* variables (docker run -e MQ_SYNC=normal ...), or from a TOML file
# mounted into the container and named by MQ_CONFIG; `mq serve --help` lists them all.
FROM python:3.11-slim

WORKDIR /src
COPY clients/python clients/python
COPY pyproject.toml README.md LICENSE ./
COPY mq mq
RUN pip install --no-cache-dir ./clients/python . && rm -rf /src

RUN useradd --system --uid 10001 --home-dir /data mq && mkdir /data && chown mq /data
USER mq
WORKDIR /data
VOLUME /data

# A broker that listens beyond loopback must be given a users file (MQ_USERS_FILE) or be told
# --insecure / MQ_INSECURE=1 that it may run without one. This image says MQ_INSECURE=1 so that
# it starts as built; mount a users file and run it with -e MQ_INSECURE=0 to require logins.
ENV MQ_PORT=7711 \
    MQ_DB=/data/mq.db \
    MQ_LOG_FORMAT=json \
    MQ_INSECURE=1
EXPOSE 7711
STOPSIGNAL SIGTERM
CMD ["mq", "serve", "--host", "0.0.0.0"]
