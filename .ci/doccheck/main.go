// Command doccheck fails when an exported identifier in the given
// directories (recursively, test files and testdata excepted) has no doc
// comment: packages, types, functions, methods of exported types, constants
// and variables (a comment on their group counts), struct fields and
// interface methods (a line comment counts).
//
//	go run ./.ci/doccheck .
package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	var missing []string
	for _, root := range os.Args[1:] {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && path != root && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			if !d.IsDir() {
				return nil
			}
			m, err := checkDir(path)
			missing = append(missing, m...)
			return err
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "doccheck:", err)
			os.Exit(2)
		}
	}
	for _, m := range missing {
		fmt.Println(m)
	}
	if len(missing) > 0 {
		fmt.Printf("doccheck: %d exported identifiers without a doc comment\n", len(missing))
		os.Exit(1)
	}
}

// checkDir reports the undocumented exported identifiers of the package in dir.
func checkDir(dir string) ([]string, error) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	var out []string
	report := func(pos token.Pos, what string) {
		out = append(out, fmt.Sprintf("%s: %s has no doc comment", fset.Position(pos), what))
	}
	for _, pkg := range pkgs {
		documented := false
		var first *ast.File
		for name, f := range pkg.Files {
			if f.Doc != nil {
				documented = true
			}
			if first == nil || name < fset.File(first.Pos()).Name() {
				first = f
			}
		}
		if !documented && pkg.Name != "main" {
			report(first.Package, "package "+pkg.Name)
		}
		for _, f := range pkg.Files {
			for _, decl := range f.Decls {
				checkDecl(decl, report)
			}
		}
	}
	return out, nil
}

func checkDecl(decl ast.Decl, report func(token.Pos, string)) {
	switch d := decl.(type) {
	case *ast.FuncDecl:
		if !d.Name.IsExported() || d.Doc != nil {
			return
		}
		if d.Recv != nil {
			if recv := receiver(d.Recv.List[0].Type); ast.IsExported(recv) {
				report(d.Pos(), "method "+recv+"."+d.Name.Name)
			}
			return
		}
		report(d.Pos(), "func "+d.Name.Name)
	case *ast.GenDecl:
		for _, spec := range d.Specs {
			switch s := spec.(type) {
			case *ast.TypeSpec:
				if !s.Name.IsExported() {
					continue
				}
				if s.Doc == nil && d.Doc == nil {
					report(s.Pos(), "type "+s.Name.Name)
				}
				checkMembers(s, report)
			case *ast.ValueSpec:
				for _, n := range s.Names {
					if n.IsExported() && s.Doc == nil && d.Doc == nil && s.Comment == nil {
						report(n.Pos(), d.Tok.String()+" "+n.Name)
					}
				}
			}
		}
	}
}

// checkMembers reports the exported fields of a struct type and the methods
// of an interface type that have neither a doc nor a line comment.
func checkMembers(s *ast.TypeSpec, report func(token.Pos, string)) {
	var fields *ast.FieldList
	switch t := s.Type.(type) {
	case *ast.StructType:
		fields = t.Fields
	case *ast.InterfaceType:
		fields = t.Methods
	default:
		return
	}
	for _, f := range fields.List {
		for _, n := range f.Names {
			if n.IsExported() && f.Doc == nil && f.Comment == nil {
				report(n.Pos(), s.Name.Name+"."+n.Name)
			}
		}
	}
}

// receiver returns the name of a method's receiver type.
func receiver(expr ast.Expr) string {
	for {
		switch t := expr.(type) {
		case *ast.StarExpr:
			expr = t.X
		case *ast.IndexExpr:
			expr = t.X
		case *ast.IndexListExpr:
			expr = t.X
		case *ast.Ident:
			return t.Name
		default:
			return ""
		}
	}
}
