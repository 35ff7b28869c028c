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
