package main

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// entry is one file of an archive, at its root.
type entry struct {
	name   string
	source string
	mode   os.FileMode
}

// packed is an archive written to the output directory.
type packed struct {
	name    string   // file name in the output directory, and the last element of its URI
	sha256  string   // hex
	bin     string   // the executable's name in the archive
	entries []string // every name in the archive, sorted
}

// packPlatform writes b's archive and its .sha256 file into cfg.outDir.
func packPlatform(cfg config, b platformBinary) (packed, error) {
	windows := b.os == "windows"
	bin := binName
	extras := cfg.files
	if windows {
		bin += ".exe"
	} else {
		extras = slices.Concat(cfg.files, cfg.unixFiles)
	}
	entries := []entry{{name: bin, source: b.source, mode: 0o755}}
	for _, f := range extras {
		fi, err := os.Stat(f)
		if err != nil {
			return packed{}, fmt.Errorf("archive file: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return packed{}, fmt.Errorf("archive file %s is not a regular file", f)
		}
		// Executable stays executable (the completion script), the rest is read-only data.
		mode := os.FileMode(0o644)
		if fi.Mode().Perm()&0o111 != 0 {
			mode = 0o755
		}
		entries = append(entries, entry{name: filepath.Base(f), source: f, mode: mode})
	}
	slices.SortFunc(entries, func(x, y entry) int { return strings.Compare(x.name, y.name) })

	ext, write := ".tar.gz", writeTarGz
	if windows {
		ext, write = ".zip", writeZip
	}
	name := fmt.Sprintf("%s_%s_%s_%s%s", binName, cfg.version, b.os, b.arch, ext)
	if err := os.MkdirAll(cfg.outDir, 0o755); err != nil {
		return packed{}, fmt.Errorf("create output directory: %w", err)
	}
	path := filepath.Join(cfg.outDir, name)
	sum, err := writeArchive(path, entries, cfg, write)
	if err != nil {
		return packed{}, err
	}
	// sha256sum's format, so `sha256sum -c ARCHIVE.sha256` checks a download.
	if err := os.WriteFile(path+".sha256", fmt.Appendf(nil, "%s  %s\n", sum, name), 0o644); err != nil {
		return packed{}, fmt.Errorf("write %s.sha256: %w", name, err)
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.name
	}
	return packed{name: name, sha256: sum, bin: bin, entries: names}, nil
}

// writeArchive writes entries with write into path, hashing what it writes.
func writeArchive(path string, entries []entry, cfg config, write func(io.Writer, []entry, config) error) (sum string, err error) {
	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("create archive: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write %s: %w", path, cerr)
		}
	}()
	h := sha256.New()
	if err := write(io.MultiWriter(f, h), entries, cfg); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeTarGz writes a gzipped tar of regular files only: krew's extractor takes nothing else.
func writeTarGz(w io.Writer, entries []entry, cfg config) error {
	gz, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		err := copyEntry(e, func(size int64) (io.Writer, error) {
			hdr := &tar.Header{
				Typeflag: tar.TypeReg,
				Name:     e.name,
				Mode:     int64(e.mode),
				Size:     size,
				ModTime:  cfg.mtime,
				Format:   tar.FormatPAX,
			}
			return tw, tw.WriteHeader(hdr)
		})
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// writeZip writes a zip whose entries keep their Unix modes (krew applies them on extraction).
func writeZip(w io.Writer, entries []entry, cfg config) error {
	zw := zip.NewWriter(w)
	for _, e := range entries {
		err := copyEntry(e, func(int64) (io.Writer, error) {
			hdr := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: cfg.mtime}
			hdr.SetMode(e.mode)
			return zw.CreateHeader(hdr)
		})
		if err != nil {
			return err
		}
	}
	return zw.Close()
}

// copyEntry copies e's source into the writer start returns for its size.
func copyEntry(e entry, start func(size int64) (io.Writer, error)) error {
	f, err := os.Open(e.source)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	w, err := start(fi.Size())
	if err != nil {
		return fmt.Errorf("%s: %w", e.name, err)
	}
	n, err := io.Copy(w, f)
	if err != nil {
		return fmt.Errorf("%s: %w", e.name, err)
	}
	if n != fi.Size() {
		// The tar header already promised fi.Size() bytes: a file that changed under us is an error.
		return fmt.Errorf("%s: copied %d of %d bytes (the file changed while it was packed)", e.name, n, fi.Size())
	}
	return nil
}
