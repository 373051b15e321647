#!/usr/bin/env node
'use strict'
// Installs the system packages cudele needs, when they are missing:
//   libfuse3-dev  headers and library for the FUSE binding in native/
//   fuse3         fusermount3 (auto_unmount, unprivileged unmount)
//   libfuse2      libfuse.so.2, used by the fuse-native reference filesystem in scripts/
//   build-essential, python3   what node-gyp needs to build native/
// Runs from `npm install`. On Debian as root it calls apt-get; anywhere else it
// says what is missing and how to install it.
const fs = require('fs')
const { onPath, libraryPresent, ensure, checkDevice } = require('./apt')

ensure([
  { what: 'FUSE 3 headers', pkg: 'libfuse3-dev', present: () => fs.existsSync('/usr/include/fuse3/fuse_lowlevel.h') },
  { what: 'fusermount3', pkg: 'fuse3', present: () => onPath('fusermount3') },
  { what: 'libfuse.so.2', pkg: 'libfuse2', present: () => libraryPresent('libfuse.so.2') },
  { what: 'a C compiler and make (node-gyp builds native/)', pkg: 'build-essential', present: () => onPath('cc') && onPath('make') && onPath('g++') },
  { what: 'python3 (node-gyp runs it)', pkg: 'python3', present: () => onPath('python3') }
], 'the FUSE binding')
checkDevice()
