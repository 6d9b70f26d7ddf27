#!/usr/bin/env bash
# Makes sure the PostgreSQL (127.0.0.1:5432, trust auth) and RabbitMQ
# (127.0.0.1:5672, guest/guest) the integration tests need are reachable.
#
# Per server, the first that applies:
#   1. the port already answers                          -> nothing to do
#   2. BILLSYNC_TEST_DATABASE_URL / _BROKER_URL is set   -> the tests use that server
#   3. a Docker engine runs                              -> the tests start testcontainers
#   4. the server is installed                           -> start it, wait for the port
#   5. root (or passwordless sudo) and apt-get           -> install it, start it, wait
#   6. otherwise                                         -> say what is missing, exit 1
#
# Idempotent, and quick when both servers already run. Used by tests/run.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
PG_WAIT_SECONDS=30
RABBIT_HOST=127.0.0.1
RABBIT_PORT=5672
RABBIT_WAIT_SECONDS=60

log() { printf '%s\n' "$*" >&2; }

# -- helpers ------------------------------------------------------------------

# The /dev/tcp fallbacks are single-quoted on purpose: $1 and $2 are the inner shell's.
# shellcheck disable=SC2016
port_open() { # host port
	if command -v python3 >/dev/null 2>&1; then
		python3 - "$1" "$2" <<'EOF' 2>/dev/null
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
EOF
	elif command -v timeout >/dev/null 2>&1; then
		timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
	else
		bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
	fi
}

wait_for_port() { # name host port seconds
	local name=$1 host=$2 port=$3 seconds=$4
	local deadline=$((SECONDS + seconds))
	while ((SECONDS < deadline)); do
		if port_open "$host" "$port"; then
			log "$name: up on $host:$port"
			return 0
		fi
		sleep 1
	done
	log "$name: did not answer on $host:$port within ${seconds}s"
	return 1
}

is_root() { [[ $(id -u) -eq 0 ]]; }

can_sudo() { command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; }

# Runs a command as root when we are root or may sudo without a password,
# else as ourselves (it may still work, e.g. a server owned by this user).
as_root() {
	if is_root; then
		"$@"
	elif can_sudo; then
		sudo -n "$@"
	else
		"$@"
	fi
}

docker_engine() {
	command -v docker >/dev/null 2>&1 || return 1
	if command -v timeout >/dev/null 2>&1; then
		timeout 20 docker info >/dev/null 2>&1
	else
		docker info >/dev/null 2>&1
	fi
}

may_install() { command -v apt-get >/dev/null 2>&1 && { is_root || can_sudo; }; }

APT_UPDATED=
apt_install() { # package
	if [[ -z $APT_UPDATED ]]; then
		log "apt-get update…"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || return 1
		APT_UPDATED=1
	fi
	log "apt-get install -y $1…"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >&2
}

# Note: the ensure_* functions run as "ensure_x || status=1", where bash ignores
# set -e, so every step below checks its own failures.

# Daemons started from here must not inherit our stdout/stderr: a caller reading
# them through a pipe would otherwise wait for the server to exit.
START_LOG=$(mktemp "${TMPDIR:-/tmp}/billsync-ensure-services.XXXXXX")
trap 'rm -f "$START_LOG"' EXIT

run_detached() { # command…
	if ! as_root "$@" </dev/null >"$START_LOG" 2>&1; then
		log "  ($* failed:)"
		sed 's/^/    /' "$START_LOG" >&2 || true
		return 1
	fi
}

# -- PostgreSQL -----------------------------------------------------------------

# The Debian cluster to use: the first "main" cluster configured for port 5432,
# else the first "main" cluster there is.
pg_version() {
	local conf first=
	for conf in /etc/postgresql/*/main/postgresql.conf; do
		[[ -f $conf ]] || continue
		local version
		version=$(basename "$(dirname "$(dirname "$conf")")")
		first=${first:-$version}
		if grep -Eq "^[[:space:]]*port[[:space:]]*=[[:space:]]*$PG_PORT\b" "$conf"; then
			echo "$version"
			return 0
		fi
	done
	if [[ -n $first ]]; then echo "$first"; fi
}

pg_installed() { command -v pg_ctlcluster >/dev/null 2>&1; }

# A package install normally creates the main cluster; create it if it did not.
pg_ensure_cluster() {
	[[ -n $(pg_version) ]] && return 0
	local version
	version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -1)
	if [[ -z $version ]] || ! command -v pg_createcluster >/dev/null 2>&1; then
		return 1
	fi
	log "postgresql: creating cluster $version/main (pg_createcluster)…"
	as_root pg_createcluster "$version" main --port "$PG_PORT" >&2
}

# Trust auth for local TCP connections and a localhost listener: what the tests
# expect of a fresh, test-only installation. Only applied to clusters we install.
pg_configure_for_tests() {
	local version=$1
	local dir=/etc/postgresql/$version/main
	local hba=$dir/pg_hba.conf
	if ! as_root grep -q '# billsync tests' "$hba"; then
		log "postgresql: trust auth for 127.0.0.1 and ::1 in $hba"
		local tmp
		tmp=$(mktemp) || return 1
		# First match wins in pg_hba.conf: put ours before the packaged rules.
		if ! {
			echo '# billsync tests: trust local TCP connections (test-only server)'
			echo 'host    all             all             127.0.0.1/32            trust'
			echo 'host    all             all             ::1/128                 trust'
			as_root cat "$hba"
		} >"$tmp" || ! as_root cp "$tmp" "$hba"; then
			rm -f "$tmp"
			return 1
		fi
		rm -f "$tmp"
	fi
	log "postgresql: listen_addresses = 'localhost', port = $PG_PORT"
	if [[ -d $dir/conf.d ]]; then
		printf "# billsync tests\nlisten_addresses = 'localhost'\nport = %s\n" "$PG_PORT" |
			as_root tee "$dir/conf.d/50-billsync-tests.conf" >/dev/null
	elif ! as_root grep -Eq "^[[:space:]]*listen_addresses" "$dir/postgresql.conf"; then
		printf "\n# billsync tests\nlisten_addresses = 'localhost'\n" |
			as_root tee -a "$dir/postgresql.conf" >/dev/null
	fi
}

pg_start() { # [start|restart]
	local action=${1:-start} version
	version=$(pg_version)
	if [[ -z $version ]]; then
		log "postgresql: no cluster under /etc/postgresql"
		return 1
	fi
	local doing=starting
	[[ $action == restart ]] && doing=restarting
	log "postgresql: $doing (pg_ctlcluster --skip-systemctl-redirect $version main $action)…"
	# pg_ctlcluster waits for the server itself: when it fails, waiting is pointless.
	if ! run_detached pg_ctlcluster --skip-systemctl-redirect "$version" main "$action" &&
		! port_open "$PG_HOST" "$PG_PORT"; then
		log "postgresql: could not $action it (this needs root, passwordless sudo or the cluster's owner);" \
			"see /var/log/postgresql/postgresql-$version-main.log"
		return 1
	fi
	if ! wait_for_port postgresql "$PG_HOST" "$PG_PORT" "$PG_WAIT_SECONDS"; then
		log "postgresql: see /var/log/postgresql/postgresql-$version-main.log"
		return 1
	fi
}

# Only a warning: the server answers, but the tests log in as "postgres" without
# a password, which needs trust (or a ~/.pgpass) for 127.0.0.1.
pg_check_login() {
	command -v psql >/dev/null 2>&1 || return 0
	if ! psql -w -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
		log "postgresql: WARNING: 'psql -h $PG_HOST -U postgres' without a password fails;" \
			"the tests need trust auth for 127.0.0.1 in pg_hba.conf, or set BILLSYNC_TEST_DATABASE_URL"
	fi
}

ensure_postgres() {
	if port_open "$PG_HOST" "$PG_PORT"; then
		log "postgresql: already running on $PG_HOST:$PG_PORT"
		pg_check_login
		return 0
	fi
	if [[ -n ${BILLSYNC_TEST_DATABASE_URL:-} ]]; then
		log "postgresql: BILLSYNC_TEST_DATABASE_URL is set; the tests use that server"
		return 0
	fi
	if docker_engine; then
		log "postgresql: not running, but a Docker engine is; the tests start a postgres:16 container"
		return 0
	fi
	if pg_installed && [[ -n $(pg_version) ]]; then
		pg_start && pg_check_login
		return
	fi
	if may_install; then
		if ! pg_installed; then
			log "postgresql: not installed; installing with apt-get…"
			apt_install postgresql || {
				log "postgresql: apt-get install postgresql failed"
				return 1
			}
		fi
		pg_ensure_cluster || {
			log "postgresql: installed, but no cluster could be created"
			return 1
		}
		local version
		version=$(pg_version)
		pg_configure_for_tests "$version" || {
			log "postgresql: could not configure /etc/postgresql/$version/main"
			return 1
		}
		# The package may have started the cluster already (systemd hosts): restart
		# it so the configuration above applies.
		if as_root pg_ctlcluster "$version" main status >/dev/null 2>&1; then
			pg_start restart && pg_check_login
		else
			pg_start start && pg_check_login
		fi
		return
	fi
	log "postgresql: MISSING — nothing answers on $PG_HOST:$PG_PORT, no Docker engine runs," \
		"and it cannot be installed here (needs root or passwordless sudo, and apt-get)."
	log "  install it:  sudo apt-get install -y postgresql   (trust auth for 127.0.0.1 in pg_hba.conf)"
	log "  start it:    sudo pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start"
	log "  or point BILLSYNC_TEST_DATABASE_URL at a server, e.g. postgresql+psycopg://postgres@host:5432/postgres"
	return 1
}

# -- RabbitMQ -------------------------------------------------------------------

rabbit_installed() { command -v rabbitmq-server >/dev/null 2>&1; }

rabbit_start() {
	log "rabbitmq: starting (rabbitmq-server -detached)…"
	# Failing here may only mean the node is already booting: wait for the port anyway.
	run_detached rabbitmq-server -detached || true
	if ! wait_for_port rabbitmq "$RABBIT_HOST" "$RABBIT_PORT" "$RABBIT_WAIT_SECONDS"; then
		log "rabbitmq: see the logs under /var/log/rabbitmq"
		return 1
	fi
}

ensure_rabbitmq() {
	if port_open "$RABBIT_HOST" "$RABBIT_PORT"; then
		log "rabbitmq: already running on $RABBIT_HOST:$RABBIT_PORT"
		return 0
	fi
	if [[ -n ${BILLSYNC_TEST_BROKER_URL:-} ]]; then
		log "rabbitmq: BILLSYNC_TEST_BROKER_URL is set; the tests use that server"
		return 0
	fi
	if docker_engine; then
		log "rabbitmq: not running, but a Docker engine is; the tests start a rabbitmq:3.13 container"
		return 0
	fi
	if rabbit_installed; then
		rabbit_start
		return
	fi
	if may_install; then
		log "rabbitmq: not installed; installing with apt-get…"
		apt_install rabbitmq-server || {
			log "rabbitmq: apt-get install rabbitmq-server failed"
			return 1
		}
		# On systemd hosts the package starts the server itself.
		if port_open "$RABBIT_HOST" "$RABBIT_PORT"; then
			log "rabbitmq: up on $RABBIT_HOST:$RABBIT_PORT (started by the package)"
			return 0
		fi
		rabbit_start
		return
	fi
	log "rabbitmq: MISSING — nothing answers on $RABBIT_HOST:$RABBIT_PORT, no Docker engine runs," \
		"and it cannot be installed here (needs root or passwordless sudo, and apt-get)."
	log "  install it:  sudo apt-get install -y rabbitmq-server"
	log "  start it:    sudo rabbitmq-server -detached"
	log "  or point BILLSYNC_TEST_BROKER_URL at a server, e.g. amqp://guest:guest@host:5672//"
	return 1
}

# -- main -------------------------------------------------------------------------

status=0
ensure_postgres || status=1
ensure_rabbitmq || status=1
if ((status != 0)); then
	log "ensure-services: the integration tests need the servers above; see the messages."
fi
exit "$status"
