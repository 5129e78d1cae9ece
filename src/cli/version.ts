// The version regmirror reports (--version, bundle files). Kept apart so that commands can name it
// without loading the command-line program.

export const VERSION = '0.1.0';
