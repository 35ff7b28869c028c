#!/usr/bin/env bash
# One entry point for a fresh machine; every command installs what is missing first.
#
#   bash run.sh demo    the main job: demo corpus -> CTC training -> decoding -> WER table
#   bash run.sh test    the test suite (what CI runs)
#   bash run.sh setup   only the installation (system packages + Python environment)
#
# The Python environment is $SSLASR_VENV (default: .venv in this directory), built from the
# pinned set in requirements.txt with the plugin installed in editable mode.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${SSLASR_VENV:-$PWD/.venv}
PYTHON=${PYTHON:-python3}
SYSTEM_PACKAGES=(espeak-ng sox fortunes-min fortunes)

apt_install() {  # apt_install WHAT PACKAGE...: install with apt-get as root, else say what is needed
    local what=$1
    shift
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing $* (apt-get, for $what)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        echo "error: $what needs $*; install them, e.g. 'sudo apt-get install $*'" >&2
        exit 2
    fi
}

system_packages() {
    if command -v espeak-ng >/dev/null && command -v sox >/dev/null && [ -f /usr/share/games/fortunes/fortunes ]; then
        return
    fi
    apt_install "the corpus" "${SYSTEM_PACKAGES[@]}"
}

install_plugin() {  # editable, so that examples/ and user_dir point at this checkout
    local log
    log=$("$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e . 2>&1) || { echo "$log" >&2; exit 1; }
}

python_env() {
    local stamp="$VENV/.sslasr-requirements"
    if [ -x "$VENV/bin/python" ] && cmp -s requirements.txt "$stamp"; then
        install_plugin
        return
    fi
    local version
    version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    case "$version" in
        3.11|3.12) ;;
        *) echo "error: $PYTHON is Python $version; the pinned fairseq wheels need 3.11 or 3.12 (set PYTHON=python3.11)" >&2; exit 2 ;;
    esac
    echo "creating $VENV and installing requirements.txt (first run: a few minutes, ~5 GB)"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip "setuptools<82" wheel  # torch 2.11 requires setuptools<82
    "$VENV/bin/python" -m pip install -q -r requirements.txt
    install_plugin
    cp requirements.txt "$stamp"
}

# KenLM's lmplz and build_binary (data_prep.lm estimates n-gram LMs with them): built once from
# the sources in PyPI's kenlm sdist into $VENV/bin; needs cmake, Boost, zlib (apt-get as root).
KENLM_VERSION=0.3.0
KENLM_PACKAGES=(cmake g++ make libboost-program-options-dev libboost-system-dev libboost-thread-dev
                libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev)

kenlm_tools() {
    if [ -x "$VENV/bin/lmplz" ] && [ -x "$VENV/bin/build_binary" ]; then
        return
    fi
    dpkg -s "${KENLM_PACKAGES[@]}" >/dev/null 2>&1 || apt_install "building KenLM" "${KENLM_PACKAGES[@]}"
    echo "building KenLM $KENLM_VERSION's lmplz and build_binary into $VENV/bin (once, ~3 min on 2 cores)"
    local build
    build=$(mktemp -d)
    "$VENV/bin/python" -m pip download -q --no-deps --no-binary kenlm --no-build-isolation -d "$build" \
        "kenlm==$KENLM_VERSION"
    tar -xzf "$build/kenlm-$KENLM_VERSION.tar.gz" -C "$build"
    local log
    log=$(cmake -S "$build/kenlm-$KENLM_VERSION" -B "$build/build" -DCMAKE_BUILD_TYPE=Release 2>&1 &&
          cmake --build "$build/build" --target lmplz build_binary -j "$(nproc)" 2>&1) || { echo "$log" >&2; exit 1; }
    cp "$build/build/bin/lmplz" "$build/build/bin/build_binary" "$VENV/bin/"
    rm -rf "$build"
}

cmd=${1:-help}
[ $# -gt 0 ] && shift
case "$cmd" in
    setup) system_packages; python_env; kenlm_tools ;;
    demo) system_packages; python_env; kenlm_tools; PATH="$VENV/bin:$PATH" bash examples/ctc/run_demo.sh "$@" ;;
    # Two test processes (pytest-xdist; a file's tests stay in one, so its fixtures are built
    # once), one thread each: the training runs are small, and 2 x 2 threads on 2 cores only
    # thrash.  SSLASR_TEST_WORKERS=0 runs them in this process.
    test) system_packages; python_env; kenlm_tools
          PATH="$VENV/bin:$PATH" OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "$VENV/bin/python" -m pytest tests \
              -n "${SSLASR_TEST_WORKERS:-2}" --dist loadfile "$@" ;;
    *) sed -n '2,9p' "$0"; exit 2 ;;
esac
