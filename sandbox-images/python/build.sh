#!/usr/bin/env bash
# Builds the `python` sandbox image offline from the host's own interpreter: the python3 binary, its
# standard library, every shared library they load (found with ldd), a POSIX shell and a handful of
# coreutils that programs under test commonly call. No registry or network is needed (about 2 s).
#
# Usage: build.sh OUTPUT_DIR
# Writes OUTPUT_DIR/rootfs/ (the unpacked root filesystem the bwrap backend binds read-only),
# OUTPUT_DIR/rootfs.tar (what `docker import` loads, so both backends run the same files) and
# OUTPUT_DIR/manifest.json (interpreter, version, size, content digest, docker tag).
set -euo pipefail
out=${1:?usage: build.sh OUTPUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=recipe.sh
. "$here/recipe.sh"

interpreter=$(readlink -f "$RECIPE_INTERPRETER")
[ -x "$interpreter" ] || { echo "build.sh: no interpreter at $RECIPE_INTERPRETER (install Debian's python3)" >&2; exit 1; }
version=$("$interpreter" -c 'import platform; print(platform.python_version())')
stdlib=$("$interpreter" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')

staging="$out/rootfs.new"
rm -rf "$staging" && mkdir -p "$staging"
umask 022
# Debian keeps its libraries under /usr with /lib, /lib64 and /bin as links: lay out the same links first,
# so files copied by their /lib/... paths land under /usr as on the host.
for link in bin lib lib64 sbin; do
  if [ -L "/$link" ]; then
    mkdir -p "$staging/$(readlink "/$link")"
    ln -sfn "$(readlink "/$link")" "$staging/$link"
  fi
done

# copy_path SRC: copies a file or folder to the same path under the root, keeping symlinks as symlinks
# and following them once so their targets come along too.
copy_path() {
  local src=$1
  [ -e "$src" ] || return 0
  mkdir -p "$staging$(dirname "$src")"
  cp -a --no-preserve=ownership "$src" "$staging$(dirname "$src")/" 2>/dev/null || true
  if [ -L "$src" ]; then copy_path "$(readlink -f "$src")"; fi
}

# The standard library, minus its self-tests and the parts that need a display or a package manager.
mkdir -p "$staging$stdlib"
tar -C "$stdlib" --exclude=./test --exclude=./idlelib --exclude=./tkinter --exclude=./turtledemo \
    --exclude=./ensurepip --exclude=./site-packages --exclude=./dist-packages -cf - . | tar -C "$staging$stdlib" -xf -

binaries=("$interpreter")
for tool in "${RECIPE_TOOLS[@]}"; do
  path=$(type -P "$tool") || { echo "build.sh: the recipe's tool '$tool' is not installed on this host" >&2; exit 1; }
  binaries+=("$(readlink -f "$path")")
done

# Every shared object the binaries and the interpreter's extension modules load.
libs=$( { for b in "${binaries[@]}"; do ldd "$b" 2>/dev/null || true; done
          find "$stdlib/lib-dynload" -name '*.so' -exec ldd {} \; 2>/dev/null || true; } |
        awk '/=>/ && $3 ~ /^\// {print $3} /^\t\// {print $1}' | sort -u)
for f in "${binaries[@]}" $libs; do copy_path "$f"; done

mkdir -p "$staging/usr/bin"
ln -sfn "$(basename "$interpreter")" "$staging/usr/bin/python3"
ln -sfn python3 "$staging/usr/bin/python"
ln -sfn dash "$staging/usr/bin/sh"
for tool in "${RECIPE_TOOLS[@]}"; do
  name=$(basename "$(type -P "$tool")"); target=$(basename "$(readlink -f "$(type -P "$tool")")")
  [ "$name" = "$target" ] || ln -sfn "$target" "$staging/usr/bin/$name"
done

# A minimal /etc: the users the sandboxes run as, and nothing secret (no shadow file).
mkdir -p "$staging/etc" "$staging/work" "$staging/tmp" "$staging/proc" "$staging/dev"
chmod 1777 "$staging/tmp"; chmod 0777 "$staging/work"
printf 'root:x:0:0:root:/root:/bin/sh\nsandbox:x:65534:65534:sandbox:/work:/bin/sh\n' > "$staging/etc/passwd"
printf 'root:x:0:\nsandbox:x:65534:\n' > "$staging/etc/group"
printf 'hosts: files\n' > "$staging/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n' > "$staging/etc/hosts"

# Content digest over paths, sizes and bytes: the docker tag, so a changed host interpreter gives a new image.
digest=$(cd "$staging" && { find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
                              find . -type l -printf '%p -> %l\n' | LC_ALL=C sort; } | sha256sum | cut -c1-12)
size=$(du -sb "$staging" | cut -f1)

rm -rf "$out/rootfs"
mv "$staging" "$out/rootfs"
tar --numeric-owner --owner=0 --group=0 -C "$out/rootfs" -cf "$out/rootfs.tar.new" .
mv "$out/rootfs.tar.new" "$out/rootfs.tar"
cat > "$out/manifest.json" <<JSON
{
  "name": "$RECIPE_NAME",
  "interpreter": "/usr/bin/python3",
  "version": "$version",
  "size_bytes": $size,
  "digest": "$digest",
  "docker_image": "nemotron-gym/$RECIPE_NAME:$digest",
  "built_from": "host $interpreter"
}
JSON
chmod -R a+rX "$out"
echo "built $RECIPE_NAME image: python $version, $((size / 1024 / 1024)) MiB, digest $digest, in $out"
