// Command modproxy writes a GOPROXY file tree that serves every published
// module of the workspace, as it is in the working tree, at one version:
//
//	go run ./.ci/modproxy -o DIR [-version v0.1.0] [-work go.work]
//
// so that GOPROXY=file://DIR,https://proxy.golang.org lets a scratch module
// `go get` them as users will once they are tagged (see .ci/published and
// RELEASING.md).
//
// The modules are the use directives of go.work, so a module added there is
// picked up. Modules that users do not install are left out: a directory
// with an element that starts with "." or "_", or is named "bench",
// "testdata" or "internal". For each module it writes
// DIR/<module>/@v/{list,<version>.info,<version>.mod,<version>.zip} and prints
// "<module path> <directory>" on standard output.
//
// A zip holds the files that git would commit from the module's directory
// (tracked and untracked files, less those .gitignore ignores and those
// deleted), without nested modules, as golang.org/x/mod/zip checks them;
// outside a git work tree it holds the directory as zip.CreateFromDir
// takes it.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/zip"
)

func main() {
	out := flag.String("o", "", "directory of the GOPROXY file tree to write (required)")
	version := flag.String("version", "v0.1.0", "version to publish every module at")
	work := flag.String("work", "go.work", "the go.work file that lists the modules")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*out, *version, *work); err != nil {
		fmt.Fprintln(os.Stderr, "modproxy:", err)
		os.Exit(1)
	}
}

func run(out, version, work string) error {
	if err := module.Check("example.com/m", version); err != nil {
		return fmt.Errorf("version %q: want a version such as v0.1.0: %v", version, err)
	}
	// The go command reads go.work and go.mod, so that directives newer
	// than this program's golang.org/x/mod are no trouble.
	var wf struct{ Use []struct{ DiskPath string } }
	if err := goJSON(&wf, "", "work", "edit", "-json", work); err != nil {
		return err
	}
	root, err := filepath.Abs(filepath.Dir(work))
	if err != nil {
		return err
	}
	for _, u := range wf.Use {
		dir := filepath.FromSlash(u.DiskPath)
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(root, dir)
		}
		if !published(u.DiskPath) {
			fmt.Fprintf(os.Stderr, "modproxy: %s: not published (skipped)\n", u.DiskPath)
			continue
		}
		path, err := publish(out, dir, version)
		if err != nil {
			return fmt.Errorf("%s: %w", u.DiskPath, err)
		}
		fmt.Printf("%s %s\n", path, dir)
	}
	return nil
}

// goJSON runs the go command in dir and decodes its JSON output into v.
func goJSON(v any, dir string, args ...string) error {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	data, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go %s: %v", strings.Join(args, " "), err)
	}
	return json.Unmarshal(data, v)
}

// published reports whether the module in the go.work use path p is one
// that users install: not the tools (".ci"), the examples ("_example",
// "examples"), the benchmarks, the browser test ("e2e", which drives
// ../_example), fixtures or internal modules.
func published(p string) bool {
	for _, elem := range strings.Split(filepath.ToSlash(filepath.Clean(p)), "/") {
		switch {
		case elem == ".", elem == "..":
		case strings.HasPrefix(elem, "."), strings.HasPrefix(elem, "_"),
			elem == "bench", elem == "e2e", elem == "examples", elem == "testdata", elem == "internal":
			return false
		}
	}
	return true
}

// publish writes the module in dir at version into the tree under out and
// returns its path.
func publish(out, dir, version string) (string, error) {
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return "", err
	}
	var mf struct {
		Module  struct{ Path string }
		Replace []struct{ Old struct{ Path string } }
	}
	if err := goJSON(&mf, dir, "mod", "edit", "-json"); err != nil {
		return "", err
	}
	path := mf.Module.Path
	for _, r := range mf.Replace {
		return "", fmt.Errorf("go.mod replaces %s: users' builds ignore replace; require a tagged version instead", r.Old.Path)
	}
	mv := module.Version{Path: path, Version: version}
	escaped, err := module.EscapePath(path)
	if err != nil {
		return "", err
	}
	vdir := filepath.Join(out, filepath.FromSlash(escaped), "@v")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return "", err
	}
	var z bytes.Buffer
	files, err := gitFiles(dir)
	switch {
	case err != nil:
		return "", err
	case files == nil: // not in a git work tree
		err = zip.CreateFromDir(&z, mv, dir)
	default:
		err = zip.Create(&z, mv, files)
	}
	if err != nil {
		return "", err
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, time.Now().UTC().Truncate(time.Second)})
	if err != nil {
		return "", err
	}
	for name, data := range map[string][]byte{
		version + ".mod":  gomod,
		version + ".zip":  z.Bytes(),
		version + ".info": info,
		"list":            []byte(version + "\n"),
	} {
		if err := os.WriteFile(filepath.Join(vdir, name), data, 0o644); err != nil {
			return "", err
		}
	}
	return path, nil
}

// gitFiles lists the files of the module in dir that git would commit,
// leaving out nested modules; nil, nil outside a git work tree.
func gitFiles(dir string) ([]zip.File, error) {
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--full-name", ".")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	listed, err := cmd.Output()
	if err != nil {
		if strings.Contains(stderr.String(), "not a git repository") {
			return nil, nil
		}
		return nil, fmt.Errorf("git ls-files: %v: %s", err, stderr.Bytes())
	}
	top, err := exec.Command("git", "-C", dir, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return nil, fmt.Errorf("git rev-parse --show-toplevel: %v", err)
	}
	repo := strings.TrimSpace(string(top))
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, err
	}
	files := []zip.File{}
	nested := map[string]bool{} // directory (relative to dir) -> holds a go.mod of its own
	inNested := func(rel string) bool {
		for d := filepath.Dir(rel); d != "."; d = filepath.Dir(d) {
			isMod, ok := nested[d]
			if !ok {
				_, err := os.Stat(filepath.Join(abs, d, "go.mod"))
				isMod = err == nil
				nested[d] = isMod
			}
			if isMod {
				return true
			}
		}
		return false
	}
	seen := map[string]bool{}
	for _, name := range strings.Split(string(listed), "\x00") {
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		full := filepath.Join(repo, filepath.FromSlash(name))
		rel, err := filepath.Rel(abs, full)
		if err != nil || strings.HasPrefix(rel, "..") {
			return nil, fmt.Errorf("git listed %s outside %s", name, abs)
		}
		fi, err := os.Lstat(full)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the working tree, or a link
		}
		if inNested(rel) {
			continue
		}
		files = append(files, diskFile{path: filepath.ToSlash(rel), full: full, info: fi})
	}
	return files, nil
}

// diskFile is a zip.File on disk.
type diskFile struct {
	path, full string
	info       fs.FileInfo
}

func (f diskFile) Path() string                 { return f.path }
func (f diskFile) Lstat() (fs.FileInfo, error)  { return f.info, nil }
func (f diskFile) Open() (io.ReadCloser, error) { return os.Open(f.full) }
