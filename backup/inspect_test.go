package backup

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

const pgDumpText = `--
-- PostgreSQL database dump
--

\restrict abc123

-- Dumped from database version 15.10 (Debian 15.10-0+deb12u1)
-- Dumped by pg_dump version 15.10 (Debian 15.10-0+deb12u1)

SET statement_timeout = 0;
CREATE TABLE public.orders (id integer NOT NULL, note text);
CREATE TABLE public.empty (id integer);

COPY public.empty (id) FROM stdin;
\.

COPY public."Order Lines" ("order id") FROM stdin;
7
\.


COPY public.orders (id, note) FROM stdin;
1	a note with a tab\tand a newline\n escaped
2	-- PostgreSQL database dump complete
3	\\.
\.


--
-- PostgreSQL database dump complete
--

\unrestrict abc123

`

const mysqlDumpText = "/*M!999999\\- enable the sandbox mode */ \n" +
	"-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)\n" +
	"--\n-- Host: 127.0.0.1    Database: \n" +
	"-- Server version\t10.11.6-MariaDB-0+deb12u1\n\n" +
	"--\n-- Current Database: `shop`\n--\n\n" +
	"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop`;\n\nUSE `shop`;\n" +
	"CREATE TABLE `orders` (\n  `id` int(11) NOT NULL,\n  `note` text\n);\n" +
	"INSERT INTO `orders` VALUES (1,'it''s (a) note'),(2,'back\\\\slash \\' (quote)'),(3,NULL);\n" +
	"INSERT INTO `orders` VALUES\n(4,'x;y'),\n(5,'z');\n" +
	"CREATE TABLE `empty` (\n  `id` int(11)\n);\n" +
	"/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n\n" +
	"-- Dump completed on 2026-12-03 19:20:11\n"

func TestInspectorsReadWhatTheDumpHolds(t *testing.T) {
	for _, tc := range []struct {
		engine, dump   string
		server, client string
		tables         []tableRows
		databases      []string
	}{
		{engine: "postgres", dump: pgDumpText, server: "15.10 (Debian 15.10-0+deb12u1)", client: "15.10 (Debian 15.10-0+deb12u1)",
			tables: []tableRows{{`public."Order Lines"`, 1}, {"public.empty", 0}, {"public.orders", 3}}},
		{engine: "mysql", dump: mysqlDumpText, server: "10.11.6-MariaDB-0+deb12u1", client: "10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)",
			tables: []tableRows{{"shop.empty", 0}, {"shop.orders", 5}}, databases: []string{"shop"}},
	} {
		// Whatever the sizes of the writes the dump arrives in, the same facts.
		for _, size := range []int{1, 3, 7, 64, 1 << 20} {
			in := newInspector(tc.engine)
			for rest := tc.dump; rest != ""; {
				n := min(size, len(rest))
				in.Write([]byte(rest[:n]))
				rest = rest[n:]
			}
			facts, err := in.finish()
			if err != nil {
				t.Fatalf("%s in writes of %d: %v", tc.engine, size, err)
			}
			if facts.serverVersion != tc.server || facts.clientVersion != tc.client || !slices.Equal(facts.tables, tc.tables) || !slices.Equal(facts.databases, tc.databases) {
				t.Errorf("%s in writes of %d: %+v", tc.engine, size, facts)
			}
		}
		// Cut short anywhere before the completion comment: not a whole dump.
		cut := strings.LastIndex(tc.dump, "-- ")
		for _, at := range []int{0, len(tc.dump) / 2, cut} {
			in := newInspector(tc.engine)
			in.Write([]byte(tc.dump[:at]))
			if _, err := in.finish(); err == nil || !strings.Contains(err.Error(), "cut short") {
				t.Errorf("%s cut at %d of %d: %v", tc.engine, at, len(tc.dump), err)
			}
		}
		// A statement after the completion comment: the comment was not the end.
		in := newInspector(tc.engine)
		in.Write([]byte(tc.dump + "SELECT 1;\n"))
		if _, err := in.finish(); err == nil {
			t.Errorf("%s: a statement after the completion comment passed", tc.engine)
		}
	}
}

func TestArchiveInspectorChecksTheFrame(t *testing.T) {
	whole := append(append(append([]byte{}, archiveMagic...), "some bson"...), archiveTerminator...)
	for _, tc := range []struct {
		data []byte
		ok   bool
	}{
		{whole, true},
		{whole[:len(whole)-2], false},
		{whole[4:], false},
		{nil, false},
	} {
		in := newInspector("mongodb")
		for _, b := range tc.data {
			in.Write([]byte{b})
		}
		if _, err := in.finish(); (err == nil) != tc.ok {
			t.Errorf("%q: %v", tc.data, err)
		}
	}
}

// BenchmarkInspect reads 64 MiB of each engine's dump text, in the 256 KiB reads the sidecar makes; MB/s is of
// the dump. The inspector reads every byte of every backup, on the core zstd shares with the dump client.
//
//	go test ./backup/ -run '^$' -bench Inspect
func BenchmarkInspect(b *testing.B) {
	for _, engine := range []string{"postgres", "mysql"} {
		dump, rows := inspectSample(engine, 64<<20)
		b.Run(engine, func(b *testing.B) {
			b.SetBytes(int64(len(dump)))
			for b.Loop() {
				in := newInspector(engine)
				for rest := dump; len(rest) > 0; {
					n := min(len(rest), 256<<10)
					in.Write(rest[:n])
					rest = rest[n:]
				}
				facts, err := in.finish()
				if err != nil || len(facts.tables) != 1 || facts.tables[0].Rows != rows {
					b.Fatalf("%+v, %v; want %d rows", facts.tables, err, rows)
				}
			}
		})
	}
}

// inspectSample is about size bytes of an engine's dump of an orders table: pg_dump's COPY rows, or
// mariadb-dump's INSERTs of about 1 MB of tuples each, notes with quotes and escapes among them, and its rows.
func inspectSample(engine string, size int) ([]byte, int64) {
	var b strings.Builder
	row := func(i int) string {
		return fmt.Sprintf("%d\t%d\tshipped\t%d.%02d\tEUR\t2024-05-%02d 10:11:12+00\t%08x-1234-5678-9abc-def012345678\tleave it's parcel at the door",
			i, i*7%250000, i%2000, i%100, 1+i%28, i*2654435761)
	}
	i := 0
	if engine == "postgres" {
		b.WriteString("COPY public.orders (id, customer_id, status, amount, currency, created_at, public_id, note) FROM stdin;\n")
		for ; b.Len() < size; i++ {
			b.WriteString(row(i) + "\n")
		}
		b.WriteString("\\.\n\n--\n-- PostgreSQL database dump complete\n--\n\n")
		return []byte(b.String()), int64(i)
	}
	b.WriteString("USE `shop`;\nCREATE TABLE `orders` (\n  `id` int(11) NOT NULL\n);\n")
	for b.Len() < size {
		b.WriteString("INSERT INTO `orders` VALUES ")
		for start := b.Len(); b.Len()-start < 1<<20; i++ {
			if b.Len() != start {
				b.WriteByte(',')
			}
			f := strings.Split(row(i), "\t")
			fmt.Fprintf(&b, "(%s,%s,'%s',%s,'%s','%s','%s','%s')", f[0], f[1], f[2], f[3], f[4], f[5][:19], f[6], strings.ReplaceAll(f[7], "'", `\'`))
		}
		b.WriteString(";\n")
	}
	b.WriteString("-- Dump completed on 2026-12-03 19:20:11\n")
	return []byte(b.String()), int64(i)
}

// scanValues jumps between the bytes that matter; the byte-by-byte reading it replaced is the reference. On
// random VALUES made of those bytes, written in random pieces, both count the same tuples and find the same end.
func TestScanValuesAgreesWithReadingByteByByte(t *testing.T) {
	reference := func(v string) (tuples int, rest string) {
		depth, quote, escaped := 0, byte(0), false
		for i := 0; i < len(v); i++ {
			c := v[i]
			switch {
			case escaped:
				escaped = false
			case quote != 0:
				if c == '\\' {
					escaped = true
				} else if c == quote {
					quote = 0
				}
			case c == '\'' || c == '"':
				quote = c
			case c == '(':
				if depth == 0 {
					tuples++
				}
				depth++
			case c == ')':
				depth--
			case c == ';' && depth == 0:
				return tuples, v[i+1:]
			}
		}
		return tuples, ""
	}
	rng := rand.New(rand.NewPCG(3, 4))
	const alphabet = `'"\();,ab`
	for range 20000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		v := string(b)
		want, wantRest := reference(v)
		s := &sqlInspector{dialect: mysqlDialect, inValues: true, valTable: "t"}
		var rest []byte
		for p := []byte(v); len(p) > 0 && s.inValues; {
			n := 1 + rng.IntN(len(p))
			rest = s.scanValues(p[:n])
			if s.inValues {
				p = p[n:]
				continue
			}
			rest = append(rest, p[n:]...)
		}
		if got := s.rows["t"]; got != int64(want) || string(rest) != wantRest {
			t.Fatalf("VALUES %q: %d tuples, rest %q; reading byte by byte: %d, rest %q", v, got, rest, want, wantRest)
		}
	}
}
