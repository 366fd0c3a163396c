# The `python` sandbox image: what build.sh puts in it.
RECIPE_NAME=python
# The interpreter is the host distribution's (Debian python3 package: binary, standard library, shared libraries),
# never a user-installed one (pyenv, conda) that may live under a home folder.
RECIPE_INTERPRETER=/usr/bin/python3
# Host tools copied in beside it (with their libraries): a shell for `sh -c` and a few coreutils.
RECIPE_TOOLS=(dash cat ls sleep echo env head tail wc sort mkdir rm cp true false)
