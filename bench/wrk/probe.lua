-- Safari's probe: the first two bytes.
wrk.headers["Range"] = "bytes=0-1"
