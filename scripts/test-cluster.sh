#!/usr/bin/env bash
# A real single-node SLURM cluster and an OpenSSH server on 127.0.0.1, for beans-slurm's
# integration tests. Needs root. Everything lives under $B (default /tmp/beans-test-cluster).
#
#   scripts/test-cluster.sh install   apt-get the Debian packages (slurm-wlm munge openssh-server,
#                                     and mariadb + slurmdbd for accounting unless WITH_DBD=0)
#   scripts/test-cluster.sh up        start munge, [mariadb, slurmdbd], slurmctld, slurmd, sshd
#   scripts/test-cluster.sh down      cancel every job, stop what `up` started (by recorded PID)
#   scripts/test-cluster.sh status    say what is running; exit 0 only when the cluster answers
#   scripts/test-cluster.sh env       print the environment the tests read (BEANS_SLURM_TEST_*)
#
# The cluster has a `cpu` (default) and a `gpu` partition; the gpu partition's node has two fake
# GPUs (character devices) so `--gres=gpu:1` works. sshd listens on 127.0.0.1:2222 for the
# throwaway user $SSH_USER (default beansuser) with a throwaway key; its host key is written to
# $B/ssh/known_hosts. Remote commands find the cluster through sshd's `SetEnv SLURM_CONF=…`.
set -euo pipefail
B=${B:-/tmp/beans-test-cluster}
WITH_DBD=${WITH_DBD:-1}
SSH_USER=${SSH_USER:-beansuser}
SSH_PORT=${SSH_PORT:-2222}
JOB_SLOTS=${JOB_SLOTS:-8}

die() { echo "test-cluster: $*" >&2; exit 1; }
waitfor() { # waitfor <secs> <description> <command...>
  local t=$1 d=$2; shift 2; local end=$(( $(date +%s) + t ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt $end ] || die "timed out after ${t}s waiting for $d (logs in $B/log)"
    sleep 0.1
  done
}
listening() { ss -Htln "sport = :$1" | grep -q .; }
alive() { [ -e /proc/$1 ] && ! grep -q '^[0-9]* ([^)]*) Z' /proc/$1/stat 2>/dev/null; }
start() { # start <name> <cmd...>: foreground daemon, detached; pid in $B/run/<name>.pid
  local n=$1; shift
  setsid "$@" >"$B/log/$n.stdout" 2>&1 </dev/null & echo $! >"$B/run/$n.pid"
}
need_root() { [ "$(id -u)" = 0 ] || die "run as root (it starts daemons and adds user $SSH_USER)"; }

cmd_install() {
  need_root
  local pkgs="slurm-wlm munge openssh-server"
  if [ "$WITH_DBD" = 1 ]; then pkgs="$pkgs mariadb-server-core mariadb-client-core slurmdbd"; fi
  local missing=""
  for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  [ -z "$missing" ] && { echo "test-cluster: packages present"; return; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
  echo "test-cluster: installed$missing"
}

cmd_up() {
  need_root
  local H; H=$(hostname -s)
  if ! getent ahostsv4 "$H" | awk '{print $1}' | grep -qx 127.0.0.1; then
    echo "127.0.0.1 $H" >>/etc/hosts   # the node name must resolve to loopback
    getent ahostsv4 "$H" | awk '{print $1}' | grep -qx 127.0.0.1 || die "$H does not resolve to 127.0.0.1"
  fi
  if cmd_status >/dev/null 2>&1; then echo "test-cluster: already up"; return; fi
  cmd_down >/dev/null 2>&1 || true
  local MEM=$(( $(free -m | awk '/^Mem:/{print $2}') * 80 / 100 ))
  mkdir -p "$B"/{etc,state,spool,run,log,munge,dev,ssh,home}
  chmod 755 "$B" "$B/ssh"

  mungekey -c -f -k "$B/munge/munge.key"
  start munged munged -F --key-file="$B/munge/munge.key" --socket="$B/munge/munge.socket.2" \
    --pid-file="$B/munge/munged.pid" --log-file="$B/log/munged.log" --seed-file="$B/munge/munged.seed"
  waitfor 10 munged test -S "$B/munge/munge.socket.2"
  munge -S "$B/munge/munge.socket.2" -n | unmunge -S "$B/munge/munge.socket.2" >/dev/null

  for i in 0 1; do [ -c "$B/dev/gpu$i" ] || mknod "$B/dev/gpu$i" c 1 3; done

  local ACCT="AccountingStorageType=accounting_storage/none"
  if [ "$WITH_DBD" = 1 ]; then
    ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819
AccountingStoragePass=$B/munge/munge.socket.2
AccountingStorageTRES=gres/gpu"
  fi
  cat >"$B/etc/slurm.conf" <<EOF
ClusterName=beanstest
SlurmctldHost=$H(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$B/munge/munge.socket.2
StateSaveLocation=$B/state
SlurmdSpoolDir=$B/spool
SlurmctldPidFile=$B/run/slurmctld.pidfile
SlurmdPidFile=$B/run/slurmd.pidfile
SlurmctldLogFile=$B/log/slurmctld.log
SlurmdLogFile=$B/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_interval=2,bf_interval=1
DependencyParameters=kill_invalid_depend
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=300
KillWait=5
JobCompType=jobcomp/filetxt
JobCompLoc=$B/log/jobcomp.txt
$ACCT
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
GresTypes=gpu
NodeName=$H NodeAddr=127.0.0.1 CPUs=$JOB_SLOTS RealMemory=$MEM Gres=gpu:fake:2 State=UNKNOWN
PartitionName=cpu Nodes=$H Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$H MaxTime=INFINITE State=UP
EOF
  cat >"$B/etc/gres.conf" <<EOF
AutoDetect=off
NodeName=$H Name=gpu Type=fake File=$B/dev/gpu[0-1]
EOF
  export SLURM_CONF=$B/etc/slurm.conf

  if [ "$WITH_DBD" = 1 ]; then
    mkdir -p "$B/mysql/data" "$B/mysql/run"
    [ -d "$B/mysql/data/mysql" ] || mariadb-install-db --no-defaults --user=root --datadir="$B/mysql/data" \
      --auth-root-authentication-method=socket --skip-test-db >"$B/log/mariadb-install.log" 2>&1
    cat >"$B/mysql/init.sql" <<'EOF'
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'beanstest';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
EOF
    start mariadbd /usr/sbin/mariadbd --no-defaults --user=root --datadir="$B/mysql/data" \
      --socket="$B/mysql/run/mysqld.sock" --pid-file="$B/mysql/run/mysqld.pid" --bind-address=127.0.0.1 \
      --port=3307 --skip-name-resolve --log-error="$B/log/mariadb.err" --innodb-buffer-pool-size=64M \
      --init-file="$B/mysql/init.sql"
    waitfor 60 mariadbd listening 3307
    cat >"$B/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$B/munge/munge.socket.2
CommunicationParameters=NoInAddrAny
DbdAddr=127.0.0.1
DbdHost=$H
DbdPort=6819
SlurmUser=root
DebugLevel=info
LogFile=$B/log/slurmdbd.log
PidFile=$B/run/slurmdbd.pidfile
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3307
StorageUser=slurm
StoragePass=beanstest
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$B/etc/slurmdbd.conf"
    start slurmdbd slurmdbd -D
    waitfor 60 slurmdbd listening 6819
  fi

  start slurmctld slurmctld -D -i
  waitfor 30 slurmctld listening 6817
  start slurmd slurmd -D
  waitfor 30 "node idle" bash -c "sinfo -h -n $H -o %T | grep -qx idle"

  [ -d /run/sshd ] || mkdir -m 0755 /run/sshd
  [ -f "$B/ssh/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$B/ssh/host_ed25519" -C beans-test-host
  [ -f "$B/ssh/user_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$B/ssh/user_ed25519" -C beans-test-user
  cp "$B/ssh/user_ed25519.pub" "$B/ssh/authorized_keys"; chmod 644 "$B/ssh/authorized_keys"
  getent passwd "$SSH_USER" >/dev/null || useradd -M -d "$B/home/$SSH_USER" -s /bin/bash "$SSH_USER"
  usermod -d "$B/home/$SSH_USER" -p '*' "$SSH_USER"   # '*': no password, but not locked
  mkdir -p "$B/home/$SSH_USER"; chown "$SSH_USER:" "$B/home/$SSH_USER"
  cat >"$B/ssh/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $SSH_PORT
HostKey $B/ssh/host_ed25519
PidFile $B/run/sshd.pidfile
AuthorizedKeysFile $B/ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
X11Forwarding no
PrintMotd no
MaxSessions 64
MaxStartups 64:30:128
SetEnv SLURM_CONF=$B/etc/slurm.conf
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
  /usr/sbin/sshd -t -f "$B/ssh/sshd_config"
  start sshd /usr/sbin/sshd -D -e -f "$B/ssh/sshd_config"
  waitfor 10 sshd listening "$SSH_PORT"
  ssh-keyscan -p "$SSH_PORT" -t ed25519 127.0.0.1 2>/dev/null >"$B/ssh/known_hosts"
  [ -s "$B/ssh/known_hosts" ] || die "ssh-keyscan found no host key on 127.0.0.1:$SSH_PORT"
  echo "$WITH_DBD" >"$B/run/accounting"
  echo "test-cluster: up (SLURM_CONF=$B/etc/slurm.conf; ssh -p $SSH_PORT -i $B/ssh/user_ed25519 -o UserKnownHostsFile=$B/ssh/known_hosts $SSH_USER@127.0.0.1)"
}

cmd_down() {
  export SLURM_CONF=$B/etc/slurm.conf
  if [ -f "$B/run/slurmctld.pid" ] && alive "$(cat "$B/run/slurmctld.pid")"; then
    squeue -h -o %A 2>/dev/null | sort -u | xargs -r scancel 2>/dev/null || true
    for _ in $(seq 1 100); do [ -z "$(squeue -h -t R,CG -o %A 2>/dev/null)" ] && break; sleep 0.1; done
  fi
  for n in sshd slurmd slurmctld slurmdbd mariadbd munged; do
    local f=$B/run/$n.pid; [ -f "$f" ] || continue
    local p; p=$(cat "$f")
    if alive "$p"; then
      kill -TERM "$p"
      for _ in $(seq 1 100); do alive "$p" || break; sleep 0.1; done
      alive "$p" && { echo "test-cluster: $n ($p) ignored TERM, sending KILL"; kill -KILL "$p"; }
    fi
    echo "test-cluster: $n ($p) stopped"; rm -f "$f"
  done
}

cmd_status() {
  local ok=0 n
  for n in munged slurmctld slurmd sshd; do
    if [ -f "$B/run/$n.pid" ] && alive "$(cat "$B/run/$n.pid")"; then echo "$n: running"; else echo "$n: stopped"; ok=1; fi
  done
  [ $ok = 0 ] || return 1
  SLURM_CONF=$B/etc/slurm.conf sinfo -h -o '%P %T' || return 1
}

cmd_env() {
  cat <<EOF
BEANS_SLURM_TEST_CLUSTER=1
BEANS_SLURM_TEST_SLURM_CONF=$B/etc/slurm.conf
BEANS_SLURM_TEST_SSH_ADDR=127.0.0.1:$SSH_PORT
BEANS_SLURM_TEST_SSH_USER=$SSH_USER
BEANS_SLURM_TEST_SSH_KEY=$B/ssh/user_ed25519
BEANS_SLURM_TEST_KNOWN_HOSTS=$B/ssh/known_hosts
BEANS_SLURM_TEST_HOME=$B/home/$SSH_USER
BEANS_SLURM_TEST_ACCOUNTING=$(cat "$B/run/accounting" 2>/dev/null || echo "$WITH_DBD")
EOF
}

case "${1:-}" in
  install) cmd_install ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 install|up|down|status|env" >&2; exit 2 ;;
esac
