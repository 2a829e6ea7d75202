// Command tandem injects backup sidecars into annotated database Pods and defaults Jobs and CronJobs: as a
// Kubernetes mutating admission webhook (tandem webhook), or offline on YAML manifests (tandem inject).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/tandem-dev/tandem/webhook/config"
)

const usage = `tandem injects backup sidecars into annotated database Pods.

Usage:
  tandem webhook [flags]     serve the mutating admission webhook over HTTPS
  tandem inject -f FILE      print manifests as the webhook would mutate them (-f - reads stdin)
  tandem backup [flags]      run the backup sidecar: dump, upload and prune on an interval (--once: one backup)
  tandem restore --from latest|URL
                             restore a backup into the database the sidecar serves
  tandem verify --from latest|URL
                             prove that a backup restores, into a throwaway server (postgres)
  tandem version             print the version
  tandem probe --url URL --ca-file FILE
                             ask a running webhook about an annotated pod (helm test)

Run "tandem COMMAND --help" for a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if v := releaseVersion(); v != "devel" {
		// Profiles without an image run tandem's backup image of this very version.
		config.DefaultBackupImage = config.BackupImageRepository + ":" + v
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "webhook":
		err = runWebhook(args)
	case "inject":
		err = runInject(args, os.Stdin, os.Stdout, os.Stderr)
	case "backup":
		err = runBackup(args)
	case "restore":
		err = runRestore(args)
	case "verify":
		err = runVerify(args)
	case "probe":
		err = runProbe(args, os.Stdout)
	case "version", "--version":
		fmt.Println(versionString())
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "tandem: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "tandem %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// parseFlags parses a subcommand's flags; usage is the text printed above the flag list. It reports whether the
// user asked for --help, which prints the usage and is no error. A bad flag prints the usage and exits 2.
func parseFlags(fs *flag.FlagSet, usage string, args []string) (help bool) {
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true
		}
		os.Exit(2)
	}
	return false
}
