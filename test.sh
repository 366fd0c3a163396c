#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh Debian machine, then runs it.
# Usage: ./test.sh [extra dotnet test arguments]
set -euo pipefail
cd "$(dirname "$0")"

# ---- system packages -------------------------------------------------------------------------
# Each area lists what its tests need; the list is installed in one apt call when anything is missing.
apt_packages=(postgresql)

# web UI: Playwright drives Debian's Chromium (no browser download).
apt_packages+=(chromium)
# sandbox: bubblewrap (the default backend), a Docker engine (the tests start their own private dockerd and build
# the python image from the host's python3 when it is missing).
apt_packages+=(bubblewrap docker.io python3)

# kernels: NVRTC, so the CUDA kernels are compiled (not run) on machines with no GPU. Debian ships it in
# its non-free component, which the stock sources leave out.
apt_packages+=(libnvrtc11.2)
nonfree_sources=/etc/apt/sources.list.d/nemotron-gym-non-free.sources

# Adds a sources entry with contrib and non-free (main is already there) for the same mirror and suite as the machine's
# existing Debian source (deb822 or one-line format), once.
add_debian_non_free() {
  [ -e "$nonfree_sources" ] && return 0
  local uri="" suite=""
  if [ -r /etc/apt/sources.list.d/debian.sources ]; then
    # The first stanza that is not the security archive.
    read -r uri suite < <(awk '
      /^URIs:/ {u=$2} /^Suites:/ {s=$2}
      /^$/ { if (u != "" && u !~ /security/) { print u, s; found=1; exit } u=""; s="" }
      END { if (!found && u != "" && u !~ /security/) print u, s }' /etc/apt/sources.list.d/debian.sources) || true
  fi
  if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
    read -r uri suite < <(awk '$1 == "deb" && $2 !~ /security/ { print $2, $3; exit }' /etc/apt/sources.list) || true
  fi
  if [ -z "$uri" ]; then
    uri=http://deb.debian.org/debian
    suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
  fi
  echo "test.sh: adding Debian non-free ($uri $suite) for libnvrtc11.2 in $nonfree_sources"
  printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: contrib non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$uri" "$suite" | $sudo tee "$nonfree_sources" >/dev/null
}

# environments/Swe: the bug generator and its tests run on the system Python 3 (standard library only); git
# cross-checks the patches it writes.
apt_packages+=(python3 git)

sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
if [ ${#apt_packages[@]} -gt 0 ]; then
  missing=()
  for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    [[ " ${missing[*]} " == *" libnvrtc11.2 "* ]] && add_debian_non_free
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

# ---- the suite -------------------------------------------------------------------------------
echo "test.sh: SWE environment, Python side (bug generator, validator, task data)"
python3 -B -m unittest discover -s environments/Swe/tools/tests -t environments/Swe/tools
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build Nemotron.Gym.sln -c Release --nologo -v q
# The whole output is kept; on a failure its failed tests (name, message, the top of the stack) are printed again at
# the end, since a CI log shows only its tail.
log=$(mktemp /tmp/nemotron-gym-test.XXXXXX.log)
set +e
dotnet test --solution Nemotron.Gym.sln -c Release --no-build "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  echo
  echo "test.sh: the suite failed (exit $status); its failed tests again, from $log:"
  sed -i 's/\x1b\[[0-9;]*m//g' "$log" # colour codes out, so lines start with "failed"
  grep -E -A14 '^(failed|error) ' "$log" | cut -c1-400 | head -c 9000 || true
  echo
  echo "test.sh: $(grep -c -E '^failed ' "$log" || true) failed tests in all; the summary is above."
fi
exit "$status"
