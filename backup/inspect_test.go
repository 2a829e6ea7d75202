package backup

import (
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
