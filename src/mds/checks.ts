// Checks of what callers hand the MDS (names, attribute names and values),
// written once: the MDS, a decoupled client's blind creates and every later
// path into the namespace use these, so what is refused is the same
// everywhere, with the same errno.

import { fsError } from '../common/errors'
import { NAME_MAX } from '../common/types'

/** Longest extended attribute name (Linux's XATTR_NAME_MAX). */
export const XATTR_NAME_MAX = 255
/** Largest extended attribute value (Linux's XATTR_SIZE_MAX). */
export const XATTR_VALUE_MAX = 64 * 1024
const XATTR_NAMESPACES = ['user.', 'trusted.', 'security.']

/** A name that is looked up: ENAMETOOLONG past NAME_MAX (anything else simply is not there). */
export function checkNameLength (name: string): void {
  if (name.length > NAME_MAX) throw fsError('ENAMETOOLONG', `name is ${name.length} bytes; the limit is ${NAME_MAX}`)
}

/** A name a new entry gets. */
export function checkName (name: string): void {
  checkNameLength(name)
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw fsError('EINVAL', `invalid name ${JSON.stringify(name)}`)
  }
}

export function checkXattrName (name: string): void {
  if (name.length === 0 || name.length > XATTR_NAME_MAX) throw fsError('ERANGE', `attribute name length ${name.length} is out of range`)
  if (!XATTR_NAMESPACES.some(p => name.startsWith(p))) {
    throw fsError('EOPNOTSUPP', `attribute ${name}: only the user., trusted. and security. namespaces are supported`)
  }
  // The VFS's own handlers refuse a bare prefix the same way.
  if (XATTR_NAMESPACES.includes(name)) throw fsError('EINVAL', `attribute name ${name} has nothing after its namespace`)
}

export function checkXattrValue (value: Uint8Array): void {
  if (value.length > XATTR_VALUE_MAX) throw fsError('E2BIG', `attribute value is ${value.length} bytes; the limit is ${XATTR_VALUE_MAX}`)
}
