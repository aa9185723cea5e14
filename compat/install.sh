#!/usr/bin/env bash
# Installs the real clients that compat/ runs, on a fresh Debian 12 machine (as root):
#   Python: a virtualenv in compat/.venv with psycopg 3, psycopg2, asyncpg, SQLAlchemy 2, pandas
#   Node:   node-postgres (`pg`) in compat/node/node_modules, from package-lock.json
#   Java:   Debian's pgjdbc jar (/usr/share/java/postgresql.jar) and a JDK (javac)
#   psql 15 (postgresql-client-15)
# Idempotent: each part is skipped when it is already there, so a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")"

APT_UPDATED=0
apt_install() {
    if [ "$APT_UPDATED" = 0 ]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- apt: psql, JDK, pgjdbc, python venv support, node ---------------------------------
need=()
command -v psql >/dev/null || need+=(postgresql-client-15)
command -v javac >/dev/null || need+=(default-jdk-headless)
[ -f /usr/share/java/postgresql.jar ] || need+=(libpostgresql-jdbc-java)
command -v python3 >/dev/null || need+=(python3)
command -v npm >/dev/null || need+=(nodejs npm)
if [ "${#need[@]}" -gt 0 ]; then
    echo "compat/install.sh: apt-get install ${need[*]}"
    apt_install "${need[@]}"
fi

# --- Python: a virtualenv with pinned-major client libraries ----------------------------
PY_REQS=("psycopg[binary]>=3.1,<4" "psycopg2-binary>=2.9,<3" "asyncpg>=0.29,<1"
    "SQLAlchemy>=2.0,<3" "pandas>=2,<4" "pytest>=7,<10")
VENV=.venv
check_py() {
    "$VENV/bin/python" - <<'PY' 2>/dev/null
import psycopg, psycopg2, asyncpg, sqlalchemy, pandas, pytest
assert psycopg.__version__.split(".")[0] == "3"
assert sqlalchemy.__version__.split(".")[0] == "2"
PY
}
if [ ! -x "$VENV/bin/python" ] || ! check_py; then
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV" 2>/dev/null || {
            apt_install python3-venv
            rm -rf "$VENV"
            python3 -m venv "$VENV"
        }
    fi
    echo "compat/install.sh: pip install ${PY_REQS[*]}"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PY_REQS[@]}"
    check_py || { echo "compat/install.sh: the Python clients do not import"; exit 1; }
fi

# --- Node: node-postgres from the lock file ---------------------------------------------
if ! (cd node && node -e 'require("pg")' 2>/dev/null); then
    echo "compat/install.sh: npm ci (node-postgres)"
    (cd node && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "compat/install.sh: ready ($("$VENV/bin/python" -c 'import psycopg, psycopg2, asyncpg, sqlalchemy, pandas; print("psycopg", psycopg.__version__, "psycopg2", psycopg2.__version__.split()[0], "asyncpg", asyncpg.__version__, "SQLAlchemy", sqlalchemy.__version__, "pandas", pandas.__version__)'), pg $(cd node && node -p 'require("pg/package.json").version'), $(javac -version 2>&1), $(psql --version))"
