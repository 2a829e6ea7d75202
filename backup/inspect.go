package backup

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// dumpFacts is what a dump's own text says about it, read while it streams to the file: the server's and the
// client's versions, the tables with the rows the dump holds for each, and whether it ended with the engine's
// completion marker.
type dumpFacts struct {
	serverVersion, clientVersion string
	databases                    []string
	tables                       []tableRows
	complete                     bool
}

// tableRows is one table of a dump and the rows the dump holds for it.
type tableRows struct {
	Name string `json:"name"`
	Rows int64  `json:"rows"`
}

// inspector reads a dump's plaintext as the dump program writes it; finish says what the dump holds, or why it
// is not a whole dump.
type inspector interface {
	Write(p []byte) (int, error)
	finish() (dumpFacts, error)
}

func newInspector(engine string) inspector {
	switch engine {
	case "postgres":
		return &sqlInspector{dialect: postgresDialect}
	case "mysql":
		return &sqlInspector{dialect: mysqlDialect}
	}
	return &archiveInspector{}
}

// maxLinePrefix is how much of each line the SQL inspector keeps: enough for every line it reads (comments,
// COPY and INSERT heads, USE), never a whole row.
const maxLinePrefix = 512

type dialect int

const (
	postgresDialect dialect = iota
	mysqlDialect
)

var (
	pgServer    = regexp.MustCompile(`^-- Dumped from database version (.+)$`)
	pgClient    = regexp.MustCompile(`^-- Dumped by pg_dump version (.+)$`)
	pgCopy      = regexp.MustCompile(`^COPY ((?:"(?:[^"]|"")*"|[^\s"])+) .*FROM stdin;$`)
	myServer    = regexp.MustCompile(`^-- Server version\s+(.+)$`)
	myClient    = regexp.MustCompile(`^-- (?:MySQL|MariaDB) dump (.+)$`)
	myUse       = regexp.MustCompile("^USE `((?:[^`]|``)+)`;")
	myCreate    = regexp.MustCompile("^CREATE TABLE (?:IF NOT EXISTS )?`((?:[^`]|``)+)`")
	myInsert    = regexp.MustCompile("^INSERT (?:IGNORE )?INTO `((?:[^`]|``)+)` (?:\\([^)]*\\) )?VALUES(?: |$)")
	pgComplete  = "-- PostgreSQL database dump complete"
	myCompleted = "-- Dump completed"
)

// sqlInspector reads the plain SQL pg_dump and mysqldump (or mariadb-dump) write. pg_dump holds each table's
// rows in a COPY block, one line per row, ended by \.; mysqldump in INSERT statements of many (row),(row)
// tuples, on one line (mysqldump) or one tuple per line (mariadb-dump 10.11 and later), ended by a semicolon.
// Both write a completion comment last (pg_dump may follow it with \unrestrict).
type sqlInspector struct {
	dialect dialect
	line    []byte // the current line's first maxLinePrefix bytes
	long    bool   // the current line is longer than that

	copyTable string // the table whose COPY block this is, or ""
	inValues  bool   // in an INSERT's VALUES: counting tuples until the statement ends
	depth     int
	quote     byte
	escaped   bool
	valTable  string

	database string // mysql: the database of the latest USE
	rows     map[string]int64
	server   string
	client   string
	dbs      []string
	// marker is set on the completion comment and cleared by any statement after it.
	marker bool
}

func (s *sqlInspector) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if s.inValues {
			p = s.scanValues(p)
			continue
		}
		if s.copyTable != "" && len(s.line) == 0 {
			p = s.scanRows(p)
			if len(p) == 0 {
				break
			}
		}
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		keep := min(maxLinePrefix-len(s.line), len(chunk))
		s.line = append(s.line, chunk[:keep]...)
		s.long = s.long || keep < len(chunk)
		if s.dialect == mysqlDialect && s.copyTable == "" && bytes.HasPrefix(s.line, []byte("INSERT ")) {
			if m := myInsert.FindSubmatchIndex(s.line); m != nil {
				// The head of an INSERT: count the tuples of its VALUES from here to the end of the statement.
				s.inValues, s.depth, s.quote, s.escaped = true, 0, 0, false
				s.valTable = s.qualified(unquoteIdent(string(s.line[m[2]:m[3]])))
				s.marker = false
				rest := append([]byte(nil), s.line[m[1]:]...)
				s.line, s.long = s.line[:0], false
				if after := s.scanValues(rest); !s.inValues {
					// The statement ended within the line's first bytes: the rest of the line is the next one's start.
					s.line = append(s.line, after...)
				}
				p = p[keep:]
				continue
			}
		}
		if i < 0 {
			return n, nil
		}
		s.endLine()
		p = p[i+1:]
	}
	return n, nil
}

// scanRows counts the whole rows of a COPY block at the start of p, without copying them, and returns the rest:
// from the block's end (\.), or a line cut off at the end of p, which the line reader takes.
func (s *sqlInspector) scanRows(p []byte) []byte {
	var rows int64
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 || (i == 2 && p[0] == '\\' && p[1] == '.') {
			break
		}
		rows++
		p = p[i+1:]
	}
	if rows > 0 {
		s.count(s.copyTable, rows)
	}
	return p
}

// scanValues counts the (row) tuples of an INSERT's VALUES in p, up to the semicolon that ends the statement,
// and returns what follows it. It jumps from one byte that matters to the next (a quote, a backslash in a string,
// a parenthesis or semicolon outside one) with bytes.IndexByte and IndexAny, not byte by byte: most of a dump is
// inside its tuples' strings.
func (s *sqlInspector) scanValues(p []byte) []byte {
	for len(p) > 0 {
		if s.escaped {
			s.escaped = false
			p = p[1:]
			continue
		}
		if s.quote != 0 {
			// The string ends at the first quote no backslash escapes; end is the next quote's offset in p (-1:
			// none), kept as escapes are skipped, so many backslashes before one quote are not scanned again each.
			end := bytes.IndexByte(p, s.quote)
			for {
				in := p
				if end >= 0 {
					in = p[:end]
				}
				k := bytes.IndexByte(in, '\\')
				if k < 0 {
					break
				}
				if k+1 == len(p) {
					s.escaped = true // the byte it escapes is in the next write
					return nil
				}
				p = p[k+2:]
				if end >= 0 {
					if end -= k + 2; end < 0 { // the escaped byte was that quote: the next one
						end = bytes.IndexByte(p, s.quote)
					}
				}
			}
			if end < 0 {
				return nil
			}
			s.quote = 0
			p = p[end+1:]
			continue
		}
		i := bytes.IndexAny(p, "'\"();")
		if i < 0 {
			return nil
		}
		switch c := p[i]; c {
		case '\'', '"':
			s.quote = c
		case '(':
			if s.depth == 0 {
				s.count(s.valTable, 1)
			}
			s.depth++
		case ')':
			s.depth--
		case ';':
			if s.depth == 0 {
				s.inValues = false
				return p[i+1:]
			}
		}
		p = p[i+1:]
	}
	return nil
}

func (s *sqlInspector) endLine() {
	line := string(s.line)
	s.line, s.long = s.line[:0], false
	if s.copyTable != "" {
		if line == `\.` {
			s.copyTable = ""
		} else {
			s.count(s.copyTable, 1)
		}
		return
	}
	switch {
	case line == "" || line == "--":
		return
	case line == pgComplete && s.dialect == postgresDialect, strings.HasPrefix(line, myCompleted) && s.dialect == mysqlDialect:
		s.marker = true
		return
	case line[0] == '\\' || strings.HasPrefix(line, "--"):
		// a psql meta-command (\restrict, \unrestrict) or a comment: not a statement
	default:
		s.marker = false
	}
	switch s.dialect {
	case postgresDialect:
		if m := pgServer.FindStringSubmatch(line); m != nil && s.server == "" {
			s.server = m[1]
		} else if m := pgClient.FindStringSubmatch(line); m != nil && s.client == "" {
			s.client = m[1]
		} else if m := pgCopy.FindStringSubmatch(line); m != nil {
			s.copyTable = m[1]
			s.count(m[1], 0)
		}
	case mysqlDialect:
		if m := myServer.FindStringSubmatch(line); m != nil && s.server == "" {
			s.server = m[1]
		} else if m := myClient.FindStringSubmatch(line); m != nil && s.client == "" {
			s.client = m[1]
		} else if m := myUse.FindStringSubmatch(line); m != nil {
			s.database = unquoteIdent(m[1])
			s.dbs = append(s.dbs, s.database)
		} else if m := myCreate.FindStringSubmatch(line); m != nil {
			s.count(s.qualified(unquoteIdent(m[1])), 0)
		}
	}
}

func (s *sqlInspector) qualified(table string) string {
	if s.database == "" {
		return table
	}
	return s.database + "." + table
}

func (s *sqlInspector) count(table string, n int64) {
	if s.rows == nil {
		s.rows = map[string]int64{}
	}
	s.rows[table] += n
}

func (s *sqlInspector) finish() (dumpFacts, error) {
	if len(s.line) > 0 || s.long {
		s.endLine() // a last line without its newline
	}
	facts := dumpFacts{serverVersion: s.server, clientVersion: s.client, databases: s.dbs, complete: s.marker}
	for t, n := range s.rows {
		facts.tables = append(facts.tables, tableRows{Name: t, Rows: n})
	}
	sort.Slice(facts.tables, func(i, j int) bool { return facts.tables[i].Name < facts.tables[j].Name })
	if !s.marker {
		marker := pgComplete
		if s.dialect == mysqlDialect {
			marker = myCompleted
		}
		return facts, fmt.Errorf("the dump does not end with %q, which the dump program writes last: it was cut short", marker)
	}
	return facts, nil
}

// unquoteIdent undoes MySQL's doubling of backquotes inside a quoted identifier.
func unquoteIdent(s string) string { return strings.ReplaceAll(s, "``", "`") }

// archiveMagic starts every mongodump archive; archiveTerminator ends each of its sections, the last one too.
var (
	archiveMagic      = []byte{0x6d, 0xe2, 0x99, 0x81}
	archiveTerminator = []byte{0xff, 0xff, 0xff, 0xff}
)

// archiveInspector checks the frame of a mongodump archive: its magic number first and a terminator last. It
// does not read the BSON inside, so it counts no documents.
type archiveInspector struct {
	head, tail []byte
}

func (a *archiveInspector) Write(p []byte) (int, error) {
	if len(a.head) < 4 {
		a.head = append(a.head, p[:min(4-len(a.head), len(p))]...)
	}
	a.tail = append(a.tail, p[max(0, len(p)-4):]...)
	if len(a.tail) > 4 {
		a.tail = a.tail[len(a.tail)-4:]
	}
	return len(p), nil
}

func (a *archiveInspector) finish() (dumpFacts, error) {
	switch {
	case !bytes.Equal(a.head, archiveMagic):
		return dumpFacts{}, fmt.Errorf("the dump does not start with a mongodump archive's magic number")
	case !bytes.Equal(a.tail, archiveTerminator):
		return dumpFacts{}, fmt.Errorf("the dump does not end with a mongodump archive's terminator: it was cut short")
	}
	return dumpFacts{complete: true}, nil
}
