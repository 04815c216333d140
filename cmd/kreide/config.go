package main

import (
	"context"
	"fmt"

	"kreide/config"
)

func configCommand() *command {
	return &command{
		name:  "config",
		short: "write an example config file, or check one",
		long: `Helps with the config file. Every setting has a safe default, so the file
only needs what differs; an unknown or wrong setting is an error that names
the line and the key.

Example:
  kreide config example > kreide.toml
  kreide config check -config kreide.toml`,
		sub: []*command{
			{
				name:     "config example",
				short:    "print a commented config file for a real server",
				noConfig: true,
				long: `Prints a config file for a real server, every setting explained above it:
standard ports on all addresses, data in /var/lib/kreide, a self-signed
certificate, no demo account. Edit hostname and domains (and tls for a real
certificate), then run kreide serve -config with it.

Example:
  kreide config example > kreide.toml`,
				run: configExample,
			},
			{
				name:  "config check",
				short: "check a config file",
				long: `Reads the config file and reports every problem, one line each, naming the
line and the key. Prints "ok" when there is none.

Example:
  kreide config check -config kreide.toml`,
				run: configCheck,
			},
		},
	}
}

// exampleConfig is the starting point for a real server.
func exampleConfig() *config.Config {
	c := config.Default()
	c.Hostname = "mail.school.example"
	c.Domains = []string{"school.example"}
	c.DataDir = "/var/lib/kreide"
	c.DemoAccount = ""
	c.Listen = config.Listen{
		IMAP:        ":143",
		IMAPS:       ":993",
		SMTP:        ":25",
		Submission:  ":587",
		Submissions: ":465",
		HTTPS:       ":443",
	}
	return c
}

func configExample(ctx context.Context, e *env, args []string) error {
	return exampleConfig().WriteExample(e.stdout)
}

func configCheck(ctx context.Context, e *env, args []string) error {
	if e.configPath == "" {
		return usagef("no config file given: use -config FILE")
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: ok\n", e.configPath)
	return nil
}
