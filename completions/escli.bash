# escli completion for bash: source it, or install with `escli --install-completion bash`
_escli_completion() {
    local IFS=$'\n'
    COMPREPLY=( $(_ESCLI_COMPLETE=bash _ESCLI_COMPLETE_LINE="${COMP_LINE:0:COMP_POINT}" \
                  _ESCLI_COMPLETE_WORDBREAKS="$COMP_WORDBREAKS" "$1" 2>/dev/null) )
    return 0
}
complete -o default -F _escli_completion escli
