# Sourced by the other scripts: puts a working `uv` on PATH, installing it when missing.
# Works on a machine that has only python3 (>= 3.11) and pip.
if ! command -v uv >/dev/null 2>&1; then
    for bin in "$HOME/.local/bin" "$HOME/.cache/quotewatch/uv/bin"; do
        [ -x "$bin/uv" ] && export PATH="$bin:$PATH" && break
    done
fi
if ! command -v uv >/dev/null 2>&1; then
    echo "uv not found: installing it with pip" >&2
    if ! python3 -m pip install --quiet --user uv 2>/dev/null \
        && ! python3 -m pip install --quiet uv 2>/dev/null; then
        # Debian's system Python refuses pip installs (PEP 668): use a private venv instead.
        python3 -m venv "$HOME/.cache/quotewatch/uv" \
            && "$HOME/.cache/quotewatch/uv/bin/pip" install --quiet uv
    fi
    for bin in "$HOME/.local/bin" "$HOME/.cache/quotewatch/uv/bin" "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"; do
        [ -x "$bin/uv" ] && export PATH="$bin:$PATH" && break
    done
fi
command -v uv >/dev/null 2>&1 || { echo "could not install uv; install it (pip install uv) and retry" >&2; exit 1; }
