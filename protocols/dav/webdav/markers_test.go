package webdav

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMarkersNeverInClear writes marker strings through WebDAV (folder and
// file names, content, dead properties, a lock owner) and checks that no
// file under the data dir contains them (DESIGN.md, invariant 1).
func TestMarkersNeverInClear(t *testing.T) {
	s := newServer(t)
	const (
		folder  = "MarkerDavFolderQux"
		file    = "MarkerDavFileQuuz.txt"
		content = "MarkerDavContentCorge"
		prop    = "MarkerDavPropGrault"
		owner   = "MarkerDavOwnerGarply"
	)
	s.expect(t, 201, "MKCOL", "/files/"+folder, "")
	s.expect(t, 201, "PUT", "/files/"+folder+"/"+file, content)
	s.expect(t, 201, "PUT", "/files/"+folder+"/big-"+file, strings.Repeat(content+"\n", 20000))
	s.expect(t, 207, "PROPPATCH", "/files/"+folder+"/"+file, `<propertyupdate xmlns="DAV:"><set><prop><x:`+prop+
		` xmlns:x="urn:`+prop+`">`+prop+`</x:`+prop+`></prop></set></propertyupdate>`)
	s.expect(t, 200, "LOCK", "/files/"+folder+"/"+file, lockBody("shared", owner))
	s.expect(t, 201, "COPY", "/files/"+folder, "", "Destination", "/files/"+folder+"2")
	s.expect(t, 201, "MOVE", "/files/"+folder+"2", "", "Destination", "/files/"+folder+"3")
	dir := s.d.Dir()
	s.Close()
	s.d.Close()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range []string{folder, file, content, prop, owner} {
			if bytes.Contains(bytes.ToLower(b), bytes.ToLower([]byte(m))) {
				t.Errorf("%s contains %q in clear", p, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
