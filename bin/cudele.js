#!/usr/bin/env node
'use strict'
// The command-line entry point; the program itself is compiled from src/cli.
require('../dist/src/cli/main.js').main(process.argv.slice(2))
