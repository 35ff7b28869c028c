# hq VALUE: VALUE quoted for a hydra override, so that paths with spaces, quotes, commas,
# parentheses or non-ASCII characters reach fairseq unharmed (unquoted, hydra refuses them or
# reads a comma as a sweep):   task.data="$(hq "$DATA")"
# Sourced by the example scripts; hydra keeps backslashes, except before a quote or at the end.
hq() {
    case $1 in
        *\\\'* | *\\) echo "error: hydra cannot take '$1' (a backslash before a quote or at the end): rename it" >&2
            return 2 ;;
    esac
    printf "'%s'" "${1//\'/\\\'}"
}

# hq_check PATH...: stop the script (exit 2) unless every PATH can be quoted.  Call it on the
# script's paths first: a failing hq inside "$(...)" in a command's arguments does not stop a
# `set -e` script, which would run fairseq with an empty value instead.
hq_check() {
    local value
    for value in "$@"; do
        hq "$value" >/dev/null || exit 2
    done
}
