package webdav

import "strings"

// Desktop scratch files: macOS Finder writes "._name" (AppleDouble: the
// extended attributes and resource fork of "name") next to every file it
// copies that has any, and .DS_Store in every folder it shows; Windows
// Explorer writes Thumbs.db and desktop.ini.
//
// We accept and store them like any file. Refusing "._*" with 403 is not an
// option: Finder then aborts the copy of every file that has extended
// attributes (nearly every download carries com.apple.quarantine) with
// error -36, and loses the attributes for good. Instead they are left out of
// folder listings (PROPFIND Depth 1 and the HTML index) for clients of other
// platforms: GNOME Files, davfs2, rclone and Windows do not show or sync
// Finder's droppings, Finder and Linux clients do not see Thumbs.db, while
// the platform that wrote them finds them where it left them. Requests that
// name such a file still work for everyone, so nothing behaves
// inconsistently: a client can still read, overwrite or delete it, and
// deleting a folder deletes them with it. They count against the quota.

type platform uint8

const (
	platformOther platform = iota
	platformApple
	platformWindows
)

// scratchOf says which platform's scratch file name is, if any.
func scratchOf(name string) platform {
	switch {
	case strings.HasPrefix(name, "._"), name == ".DS_Store", name == ".Trashes", name == ".TemporaryItems",
		name == ".fseventsd", name == ".Spotlight-V100", name == ".apdisk":
		return platformApple
	case strings.EqualFold(name, "Thumbs.db"), strings.EqualFold(name, "desktop.ini"), strings.EqualFold(name, "ehthumbs.db"):
		return platformWindows
	}
	return platformOther
}

// clientPlatform recognises Finder (WebDAVFS, WebDAVLib) and the Windows
// WebDAV redirector (Explorer) by their User-Agent.
func clientPlatform(ua string) platform {
	switch {
	case strings.Contains(ua, "WebDAVFS"), strings.Contains(ua, "WebDAVLib"), strings.Contains(ua, "Darwin"):
		return platformApple
	case strings.Contains(ua, "Microsoft-WebDAV-MiniRedir"), strings.Contains(ua, "Windows"):
		return platformWindows
	}
	return platformOther
}

// hidden reports whether name is left out of this client's listings.
func (rq *request) hidden(name string) bool {
	p := scratchOf(name)
	return p != platformOther && p != clientPlatform(rq.r.UserAgent())
}
