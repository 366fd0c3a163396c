#!/usr/bin/env bash
# The `gym` tool from this checkout: builds it (Release) when missing or older than the sources, then runs it with the
# arguments given: `./gym.sh --help` lists the commands. `./gym.sh --install-tool` installs it as a .NET global tool,
# after which the commands read `gym ...` (a launcher cannot be called ./gym: gym/ is the platform's folder).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dll="$root/gym/Nemotron.Gym.Cli/bin/Release/net10.0/gym.dll"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
if [ "${1:-}" = "--install-tool" ]; then
  # A .NET global tool from a local build: `gym` on PATH (~/.dotnet/tools).
  out="$root/out/tool"
  dotnet pack "$root/gym/Nemotron.Gym.Cli" -c Release -o "$out" --nologo -v q
  dotnet tool update --global --add-source "$out" Nemotron.Gym.Cli >/dev/null 2>&1 || dotnet tool install --global --add-source "$out" Nemotron.Gym.Cli
  echo "installed: gym (make sure ~/.dotnet/tools is on PATH)"
  exit 0
fi
# Rebuild when any source file of the repository is newer than the built tool.
if [ ! -f "$dll" ] || [ -n "$(find "$root/gym" "$root/policy" "$root/kernels" "$root/rewards" "$root/environments" \
      \( -name '*.cs' -o -name '*.csproj' -o -name '*.yaml' -o -name '*.cu' -o -name '*.jsonl' \) -newer "$dll" -print -quit 2>/dev/null)" ]; then
  echo "gym: building the tool (Release) ..." >&2
  dotnet build "$root/gym/Nemotron.Gym.Cli" -c Release --nologo -v q >&2
fi
exec dotnet "$dll" "$@"
