#!/usr/bin/env bash
# The Debian package: built from an already-built pgmux with packaging/build-deb, checked
# with dpkg-deb, installed with dpkg into a throwaway root, and its binary run from there.
# Leaves the system untouched (dpkg's database and log live in the temporary folder).
#
#   tests/integration/packaging_test.sh [PATH/TO/pgmux]   (default: build/pooler/pgmux)
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
binary=${1:-$src/build/pooler/pgmux}
export PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin   # dpkg wants ldconfig and friends

fails=0
pass() { printf 'ok   %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; fails=$((fails + 1)); }
check() {  # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@" >/dev/null 2>&1; then pass "$what"; else fail "$what"; fi
}

[[ -x $binary ]] || { echo "packaging_test: no pgmux binary at $binary" >&2; exit 1; }
for tool in dpkg dpkg-deb dpkg-shlibdeps; do
  command -v "$tool" >/dev/null || { echo "packaging_test: $tool is missing (apt-get install dpkg-dev)" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. Build.
deb=$("$src/packaging/build-deb" --binary "$binary" --output "$tmp/out" 2>"$tmp/build.log") ||
  { cat "$tmp/build.log"; echo "packaging_test: build-deb failed" >&2; exit 1; }
check "build-deb made $(basename "$deb")" test -s "$deb"

# 2. Metadata and contents.
info=$(dpkg-deb --info "$deb")
contents=$(dpkg-deb --contents "$deb")
for want in "Package: pgmux" "Version: " "Architecture: $(dpkg --print-architecture)"; do
  check "control has '$want'" grep -q "^ $want" <<<"$info"
done
depends=$(dpkg-deb --field "$deb" Depends)
for lib in libuv1 libssl3 libspdlog1.10 libfmt9 libtomlplusplus3 libc6; do
  check "Depends names $lib" grep -q "$lib" <<<"$depends"
done
check "conffiles lists /etc/pgmux/pgmux.toml" \
  bash -c "dpkg-deb --ctrl-tarfile '$deb' | tar -xOf - ./conffiles | grep -qx /etc/pgmux/pgmux.toml"
for path in ./usr/bin/pgmux ./lib/systemd/system/pgmux.service ./etc/pgmux/pgmux.toml \
            ./usr/share/man/man1/pgmux.1.gz; do
  check "package contains $path" grep -q " $path\$" <<<"$contents"
done

# 3. Install into a throwaway root.
root=$tmp/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
if dpkg --root="$root" --log="$tmp/dpkg.log" --force-not-root --force-depends -i "$deb" >"$tmp/dpkg.out" 2>&1; then
  pass "dpkg -i into a throwaway root"
  check "dpkg says pgmux is installed" \
    bash -c "dpkg --root='$root' -s pgmux | grep -q '^Status: install ok installed'"
  check "dpkg lists the unit as pgmux's" \
    bash -c "dpkg --root='$root' -L pgmux | grep -qx /lib/systemd/system/pgmux.service"
else
  cat "$tmp/dpkg.out"
  fail "dpkg -i into a throwaway root"
  echo "note: unpacking with dpkg -x instead, to check the files"
  rm -rf "$root"; dpkg -x "$deb" "$root"
fi
for path in usr/bin/pgmux lib/systemd/system/pgmux.service etc/pgmux/pgmux.toml usr/share/man/man1/pgmux.1.gz; do
  check "installed /$path" test -s "$root/$path"
done
check "/usr/bin/pgmux is executable" test -x "$root/usr/bin/pgmux"

# 4. The packaged binary runs.
packaged=$root/usr/bin/pgmux
version=$(sed -n 's/^project(pgmux VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
if out=$("$packaged" --version 2>&1) && [[ $out == "pgmux $version" ]]; then
  pass "packaged pgmux --version: $out"
else
  fail "packaged pgmux --version: '$out' (want 'pgmux $version')"
fi
check "the installed example config is valid" "$packaged" --check-config "$root/etc/pgmux/pgmux.toml"

# 5. The man page documents every flag of --help.
man_text=$(gzip -dc "$root/usr/share/man/man1/pgmux.1.gz" | sed 's/\\-/-/g')
help_text=$("$packaged" --help)
flags=$(grep -oE '(^|[ ,])--?[A-Za-z][-A-Za-z]*' <<<"$help_text" | tr -d ' ,' | sort -u)
flags+=$'\nimport-pgbouncer'
for flag in $flags; do
  check "man page documents $flag" grep -qe "$flag" <<<"$man_text"
done
if command -v man >/dev/null; then
  check "man page renders" bash -c "man -l '$root/usr/share/man/man1/pgmux.1.gz' 2>&1 >/dev/null | (! grep -q .)"
fi

# 6. The unit file.
if command -v systemd-analyze >/dev/null; then
  # verify wants the ExecStart binary to exist: point the copy at the packaged one.
  sed "s|/usr/bin/pgmux|$packaged|g" "$root/lib/systemd/system/pgmux.service" > "$tmp/pgmux.service"
  if out=$(systemd-analyze verify --man=no "$tmp/pgmux.service" 2>&1) && [[ -z $out ]]; then
    pass "systemd-analyze verify is clean"
  else
    fail "systemd-analyze verify: $out"
  fi
else
  echo "note: systemd-analyze is not installed; the unit file was not verified"
fi

# 7. import-pgbouncer from the packaged binary gives a config pgmux accepts.
cat > "$tmp/pgbouncer.ini" <<'INI'
[databases]
app = host=127.0.0.1 port=5432 dbname=app
[pgbouncer]
listen_port = 6432
auth_type = md5
pool_mode = transaction
logfile = /var/log/pgbouncer.log
INI
printf '"app" "md5f5b8ab1dd8d63a4f0d7e5dfd3ea0d6c3"\n' > "$tmp/userlist.txt"
if "$packaged" import-pgbouncer "$tmp/pgbouncer.ini" "$tmp/userlist.txt" >"$tmp/imported.toml" 2>"$tmp/import.err"; then
  check "import-pgbouncer output passes --check-config" "$packaged" --check-config "$tmp/imported.toml"
  check "import-pgbouncer names logfile on stderr" grep -q logfile "$tmp/import.err"
else
  cat "$tmp/import.err"
  fail "import-pgbouncer"
fi

if ((fails)); then
  echo "packaging_test: $fails check(s) failed"
  exit 1
fi
echo "packaging_test: all checks passed"
