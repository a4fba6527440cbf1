# escli completion for fish: copy to ~/.config/fish/completions/ (`escli --install-completion fish`)
function __escli_complete
    set -l out (env _ESCLI_COMPLETE=fish _ESCLI_COMPLETE_LINE=(commandline -cp) escli 2>/dev/null)
    if test (count $out) -eq 0
        __fish_complete_path (commandline -ct)
    else
        printf '%s\n' $out
    end
end
complete --command escli --no-files --arguments '(__escli_complete)'
