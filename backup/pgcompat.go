package backup

import (
	"bufio"
	"bytes"
	"io"
)

// pg_dump 17 starts every dump with `SET transaction_timeout = 0;`, a setting servers before 17 do not know:
// psql stops at it, and a restore into PostgreSQL 13-16 (whose dumps the backup image's pg_dump 17 takes) would
// fail on its first line. The restore therefore asks the server, in the stream itself, and sends that line only
// to a server that knows the setting. The question goes first, before the `\restrict` line of newer dumps,
// after which psql refuses backslash commands.
const (
	transactionTimeoutLine = "SET transaction_timeout = 0;"
	transactionTimeoutIf   = `SELECT current_setting('server_version_num')::int >= 170000 AS tandem_transaction_timeout \gset
\if :tandem_transaction_timeout
SET transaction_timeout = 0;
\endif
`
)

// postgresRestoreInput is the dump r as psql should read it: its header's `SET transaction_timeout = 0;`
// guarded by the server's version, everything else as it is. Only the header (comments, blank lines, SET and
// set_config lines before the first statement) is looked at; the rest is passed through unread.
func postgresRestoreInput(r io.Reader) io.Reader {
	br := bufio.NewReaderSize(r, 64<<10)
	var guard, head bytes.Buffer
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull || !headerLine(line) {
			// A statement (or a line too long to be a header's): the header ends here.
			return io.MultiReader(&guard, &head, bytes.NewReader(bytes.Clone(line)), br)
		}
		if string(bytes.TrimRight(line, "\r\n")) == transactionTimeoutLine && guard.Len() == 0 {
			guard.WriteString(transactionTimeoutIf)
		} else {
			head.Write(line)
		}
		if err != nil { // io.EOF or a read error: br returns it again to the reader of the rest
			return io.MultiReader(&guard, &head, br)
		}
	}
}

func headerLine(line []byte) bool {
	l := bytes.TrimSpace(line)
	return len(l) == 0 || bytes.HasPrefix(l, []byte("--")) || bytes.HasPrefix(l, []byte("SET ")) ||
		bytes.HasPrefix(l, []byte("SELECT pg_catalog.set_config(")) || bytes.HasPrefix(l, []byte(`\restrict`))
}
