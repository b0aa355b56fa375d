#!/bin/sh
# install-numpy.sh - makes the python3 on PATH import numpy (the Python binding's tests need it).
# Debian's python3-numpy (in the Makefile's DEB_PACKAGES) serves /usr/bin/python3; another python3
# first on PATH (pyenv, a virtualenv) gets numpy from pip.
python3 -c "import numpy" 2>/dev/null && exit 0
echo "$(command -v python3) cannot import numpy: installing it with pip"
if ! python3 -m pip install -q numpy; then
    echo "could not install numpy for $(command -v python3); install it with:  python3 -m pip install numpy" >&2
    exit 1
fi
