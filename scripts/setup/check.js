#!/usr/bin/env node
'use strict'
// Runs before `npm test`: the tests drive the mounted filesystem with ordinary
// tools (python3, git, make, gcc, getfattr/setfattr, tar, xz), so install the
// ones that are missing, and make sure the FUSE binding is built and /dev/fuse
// is there.
const fs = require('fs')
const path = require('path')
const { onPath, ensure, checkDevice } = require('./apt')

ensure([
  { what: 'python3', pkg: 'python3', present: () => fs.existsSync('/usr/bin/python3') },
  { what: 'git', pkg: 'git', present: () => onPath('git') },
  { what: 'make', pkg: 'make', present: () => onPath('make') },
  { what: 'gcc', pkg: 'gcc', present: () => onPath('gcc') },
  { what: 'getfattr/setfattr', pkg: 'attr', present: () => onPath('getfattr') && onPath('setfattr') },
  { what: 'tar', pkg: 'tar', present: () => onPath('tar') },
  { what: 'xz', pkg: 'xz-utils', present: () => onPath('xz') }
], 'the tests')

const binding = path.join(__dirname, '..', '..', 'native', 'build', 'Release', 'cudele_fuse.node')
if (!fs.existsSync(binding)) {
  console.error(`cudele: the FUSE binding is not built (${binding} is missing): run npm install first.`)
  process.exit(1)
}
if (!checkDevice()) process.exit(1)
if (process.getuid?.() !== 0) console.warn('cudele: the tests mount filesystems and expect to run as root.')
