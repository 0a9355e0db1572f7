#!/bin/sh
# A remote shell that runs the command locally over the same pipes ssh would use, as rsync's
# own test suite does: drops "-l user" and the host name, then runs the rest.
while [ $# -gt 0 ]; do
  case "$1" in
    -l) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
shift # host
exec sh -c "$*"
