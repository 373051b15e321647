'use strict'
// What the set-up scripts share: finding what is missing and installing it
// with apt-get (Debian, as root), or saying how when that is not possible.
const fs = require('fs')
const { execFileSync, spawnSync } = require('child_process')

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

/**
 * Install the packages of the needs that are not present ({ what, pkg,
 * present() }). Exits the process with a message when they cannot be.
 */
function ensure (needs, purpose) {
  const missing = needs.filter(n => !n.present())
  if (missing.length === 0) return
  const pkgs = [...new Set(missing.map(n => n.pkg))]
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0
  if (!isRoot || !onPath('apt-get')) {
    console.error(`cudele: ${purpose} needs ${missing.map(n => n.what).join(', ')}.`)
    console.error(`cudele: install them with: sudo apt-get install ${pkgs.join(' ')}  (Debian/Ubuntu), then try again.`)
    process.exit(1)
  }
  console.log(`cudele: installing ${pkgs.join(' ')} with apt-get (${purpose})`)
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
    console.error(`cudele: apt-get could not install ${[...new Set(still.map(n => n.pkg))].join(' ') || pkgs.join(' ')}; see the output above.`)
    process.exit(1)
  }
}

/** /dev/fuse, loading the module when it is missing; warns when there is none. */
function checkDevice () {
  if (fs.existsSync('/dev/fuse')) return true
  spawnSync('modprobe', ['fuse'], { stdio: 'ignore' })
  if (fs.existsSync('/dev/fuse')) return true
  console.warn('cudele: /dev/fuse is missing: the kernel has no FUSE support here, so mounts will fail (try: modprobe fuse).')
  return false
}

module.exports = { onPath, libraryPresent, ensure, checkDevice }
