#!/usr/bin/env node
'use strict'
// Installs the system packages cudele needs, when they are missing:
//   libfuse3-dev  headers and library for the FUSE binding in native/
//   fuse3         fusermount3 (auto_unmount, unprivileged unmount)
//   libfuse2      libfuse.so.2, used by the fuse-native reference filesystem in scripts/
// Runs from `npm install`. On Debian as root it calls apt-get; anywhere else it
// says what is missing and how to install it.
const fs = require('fs')
const { execFileSync, spawnSync } = require('child_process')

const needs = [
  { what: 'FUSE 3 headers', pkg: 'libfuse3-dev', present: () => fs.existsSync('/usr/include/fuse3/fuse_lowlevel.h') },
  { what: 'fusermount3', pkg: 'fuse3', present: () => onPath('fusermount3') },
  { what: 'libfuse.so.2', pkg: 'libfuse2', present: () => libraryPresent('libfuse.so.2') }
]

function onPath (cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0
}

function libraryPresent (soname) {
  try {
    return execFileSync('ldconfig', ['-p'], { encoding: 'utf8' }).includes(soname)
  } catch {
    return ['/lib/x86_64-linux-gnu/', '/usr/lib/x86_64-linux-gnu/', '/usr/lib/', '/lib/']
      .some(dir => fs.existsSync(dir + soname))
  }
}

function main () {
  const missing = needs.filter(n => !n.present())
  if (missing.length === 0) return checkDevice()
  const pkgs = missing.map(n => n.pkg)
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0
  if (!isRoot || !onPath('apt-get')) {
    console.error(`cudele: missing ${missing.map(n => n.what).join(', ')}.`)
    console.error(`cudele: install them with: sudo apt-get install ${pkgs.join(' ')}  (Debian/Ubuntu), then run npm install again.`)
    process.exit(1)
  }
  console.log(`cudele: installing ${pkgs.join(' ')} with apt-get`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const opts = { stdio: 'inherit', env }
  let r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], opts)
  if (r.status !== 0) {
    // A fresh machine has no package lists yet.
    spawnSync('apt-get', ['update'], opts)
    r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], opts)
  }
  const still = needs.filter(n => !n.present())
  if (r.status !== 0 || still.length > 0) {
    console.error(`cudele: apt-get could not install ${still.map(n => n.pkg).join(' ') || pkgs.join(' ')}; see the output above.`)
    process.exit(1)
  }
  checkDevice()
}

function checkDevice () {
  if (fs.existsSync('/dev/fuse')) return
  spawnSync('modprobe', ['fuse'], { stdio: 'ignore' })
  if (!fs.existsSync('/dev/fuse')) {
    console.warn('cudele: /dev/fuse is missing: the kernel has no FUSE support here, so mounts will fail (try: modprobe fuse).')
  }
}

main()
