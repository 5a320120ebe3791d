"""Key layout and Lua scripts of the Redis adapter.

Entry ``key`` lives in the Redis string ``<prefix><key>``; its value is an
8-byte version header (big-endian, random per write) followed by the stored
bytes. Compare-and-set compares that header inside a Lua script.
"""

from __future__ import annotations

import hashlib
import math
import random

from botstate.adapter import Version, int_version

__all__ = [
    "DELETE_IF",
    "GET_MANY",
    "GET_MANY_CHUNK",
    "HEADER_BYTES",
    "SET_IF",
    "Script",
    "escape_glob",
    "header_of",
    "new_header",
    "pxat",
]

HEADER_BYTES = 8
"""Length of the version header in front of every stored value."""


class Script:
    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()


# KEYS[1]=key  ARGV[1]=expected 8-byte header ('' = only if absent)
# ARGV[2]=new header+value  ARGV[3]=PXAT milliseconds ('' = no expiry)
SET_IF = Script(
    """
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if cur then return 0 end
elseif (not cur) or string.sub(cur, 1, 8) ~= ARGV[1] then
  return 0
end
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
end
return 1
"""
)

# KEYS[1]=key  ARGV[1]=expected 8-byte header
DELETE_IF = Script(
    """
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, 8) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
)

# KEYS=keys  reply: their values in order (nil = missing). A key that exists but
# MGET answers nil for holds another type: an error, never "missing".
GET_MANY = Script(
    """
local values = redis.call('MGET', unpack(KEYS))
for i = 1, #KEYS do
  if not values[i] then
    local kind = redis.call('TYPE', KEYS[i]).ok
    if kind ~= 'none' then
      return redis.error_reply('WRONGTYPE key ' .. KEYS[i] .. ' holds a ' .. kind ..
        ', not a value written by botstate')
    end
  end
end
return values
"""
)
GET_MANY_CHUNK = 1000
"""Keys per ``GET_MANY`` call (Lua's ``unpack`` fails on a few thousand values)."""


def new_header() -> bytes:
    # random.getrandbits is reseeded in forked children, so processes do not collide.
    return random.getrandbits(64).to_bytes(HEADER_BYTES, "big")


def pxat(expires_at: float) -> int:
    # PXAT must be > 0; any past time makes Redis drop the key at once. Rounding down
    # keeps the stored expiry at or before the one asked for, so a fresh ``ttl`` never
    # reads more than the caller set.
    return max(1, math.floor(expires_at * 1000))


def escape_glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def header_of(version: Version) -> bytes | None:
    number = int_version(version, high=2 ** (8 * HEADER_BYTES) - 1)
    return None if number is None else number.to_bytes(HEADER_BYTES, "big")
