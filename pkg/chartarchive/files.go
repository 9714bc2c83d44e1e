package chartarchive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"helm.sh/helm/v3/pkg/chart/loader"
)

const (
	// entryOverhead is what one entry may add to the tar stream besides its
	// data: a 512-byte header, up to 511 bytes of padding and a PAX or GNU
	// long-name record. Names are capped at maxNameBytes, so 8 KiB is generous
	// for any archive a real tool writes.
	entryOverhead = 8 << 10
	// streamSlack covers the end-of-archive blocks and the record padding GNU
	// tar adds (10 KiB by default).
	streamSlack = 1 << 20

	// Paths in real charts are well under 256 bytes and 20 elements deep;
	// bounding both keeps the per-entry path checks cheap.
	maxNameBytes = 1024
	maxNameElems = 64
)

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Files reads a gzip'd tar chart archive into memory and returns its files
// with paths relative to the chart root, in archive order, as Helm's
// loader.LoadArchiveFiles would (the single top-level directory stripped, a
// UTF-8 BOM trimmed), but refusing anything Helm merely tolerates: links,
// devices and other non-regular entries, absolute or non-canonical paths,
// backslashes, duplicates, files outside the top directory, and every limit
// in lim, counted on the bytes as they are decompressed.
func Files(data []byte, lim Limits) ([]*loader.BufferedFile, error) {
	lim = lim.withDefaults()
	return newBudget(lim).archive(data, "")
}

// budget is what one Files or Load call may still spend. Subchart archives
// inside a chart draw on the same budget as the chart itself, so nesting
// cannot multiply the limits.
type budget struct {
	lim    Limits
	bytes  int64 // file data
	files  int   // regular files
	others int   // directory and global-header entries
	// stream bounds the whole decompressed tar stream, headers and padding
	// included: archive/tar consumes PAX and GNU long-name records inside one
	// Next call, so without it a run of metadata headers would be decompressed
	// without any file ever being counted.
	stream int64
	// yamlNodes is left of YAML.MaxNodes for all the YAML files Load checks.
	yamlNodes int64
}

func newBudget(lim Limits) *budget {
	return &budget{
		lim:       lim,
		bytes:     lim.MaxDecompressed,
		files:     lim.MaxFiles,
		others:    lim.MaxFiles,
		stream:    lim.MaxDecompressed + 2*int64(lim.MaxFiles)*entryOverhead + streamSlack,
		yamlNodes: int64(lim.YAML.MaxNodes),
	}
}

var errStreamLimit = errors.New("decompressed stream limit reached")

// streamReader charges every decompressed byte to the budget and fails once
// it is spent, so a gzip bomb stops after a bounded amount of work.
type streamReader struct {
	r    io.Reader
	b    *budget
	over bool
}

func (s *streamReader) Read(p []byte) (int, error) {
	if s.over {
		return 0, errStreamLimit
	}
	// One byte past the budget tells "exactly used up" from "over".
	if room := s.b.stream + 1; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := s.r.Read(p)
	s.b.stream -= int64(n)
	if s.b.stream < 0 {
		s.over = true
		return n, errStreamLimit
	}
	return n, err
}

type seenKind uint8

const (
	seenFile     seenKind = iota + 1
	seenDir               // implied by a file's path
	seenDirEntry          // an explicit directory entry
)

// archive reads one archive; where prefixes messages for subchart archives
// ("charts/redis-1.0.0.tgz: ").
func (b *budget) archive(data []byte, where string) ([]*loader.BufferedFile, error) {
	if int64(len(data)) > b.lim.MaxCompressed {
		return nil, refuse("%sarchive is %d bytes, over MaxCompressed %d", where, len(data), b.lim.MaxCompressed)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, refuse("%snot a gzip stream: %w", where, err)
	}
	sr := &streamReader{r: zr, b: b}
	tr := tar.NewReader(sr)

	var (
		files []*loader.BufferedFile
		top   string
		seen  = map[string]seenKind{}
		last  string // names the place of a stream error
	)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, b.streamError(sr, where, last, err)
		}
		last = hdr.Name

		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeDir:
		case tar.TypeXGlobalHeader:
			// git archive writes one holding the commit id; it names no file.
			if err := b.other(where, hdr.Name); err != nil {
				return nil, err
			}
			continue
		default:
			return nil, refuse("%sentry %q: %s entries are not allowed", where, hdr.Name, typeName(hdr.Typeflag))
		}
		isDir := hdr.Typeflag == tar.TypeDir
		if !isDir && isSparse(hdr) {
			return nil, refuse("%sentry %q: sparse files are not allowed", where, hdr.Name)
		}

		elems, err := splitName(hdr.Name, isDir)
		if err != nil {
			return nil, refuse("%sentry %q: %w", where, hdr.Name, err)
		}
		switch {
		case top == "":
			top = elems[0]
		case elems[0] != top:
			return nil, refuse("%sentry %q: second top-level directory %q (the first is %q)", where, hdr.Name, elems[0], top)
		}
		if !isDir && len(elems) == 1 {
			return nil, refuse("%sentry %q: file at the top level, outside the chart directory", where, hdr.Name)
		}
		rel := strings.Join(elems[1:], "/")

		if isDir {
			if err := b.other(where, hdr.Name); err != nil {
				return nil, err
			}
			if rel == "" {
				continue // the top directory itself
			}
			switch seen[rel] {
			case seenFile:
				return nil, refuse("%sentry %q: directory has the path of a file", where, hdr.Name)
			case seenDirEntry:
				return nil, refuse("%sentry %q: duplicate directory entry", where, hdr.Name)
			}
			if err := markParents(seen, rel); err != nil {
				return nil, refuse("%sentry %q: %w", where, hdr.Name, err)
			}
			seen[rel] = seenDirEntry
			continue
		}

		switch seen[rel] {
		case seenFile:
			return nil, refuse("%sentry %q: duplicate file", where, hdr.Name)
		case seenDir, seenDirEntry:
			return nil, refuse("%sentry %q: file has the path of a directory", where, hdr.Name)
		}
		if err := markParents(seen, rel); err != nil {
			return nil, refuse("%sentry %q: %w", where, hdr.Name, err)
		}
		seen[rel] = seenFile

		data, err := b.file(tr, sr, hdr, where)
		if err != nil {
			return nil, err
		}
		files = append(files, &loader.BufferedFile{Name: rel, Data: data})
	}
	if len(files) == 0 {
		return nil, refuse("%sno files in archive", where)
	}
	// Reading to the end checks the gzip CRC and length, so a corrupt or
	// truncated tail is refused even when the tar ended cleanly before it.
	if _, err := io.Copy(io.Discard, sr); err != nil {
		return nil, b.streamError(sr, where, "", err)
	}
	if err := zr.Close(); err != nil {
		return nil, refuse("%sclose gzip stream: %w", where, err)
	}
	return files, nil
}

// file reads one regular file's data, charging it to the budget. The header
// size is only used to refuse early and to size the buffer once it is known
// to be within limits; the bytes read are what is counted.
func (b *budget) file(tr *tar.Reader, sr *streamReader, hdr *tar.Header, where string) ([]byte, error) {
	if b.files <= 0 {
		return nil, refuse("%sentry %q: more than MaxFiles %d files", where, hdr.Name, b.lim.MaxFiles)
	}
	b.files--
	if hdr.Size > b.lim.MaxFileBytes {
		return nil, refuse("%sentry %q: header says %d bytes, over MaxFileBytes %d", where, hdr.Name, hdr.Size, b.lim.MaxFileBytes)
	}
	if hdr.Size > b.bytes {
		return nil, refuse("%sentry %q: header says %d bytes, over what is left of MaxDecompressed %d", where, hdr.Name, hdr.Size, b.lim.MaxDecompressed)
	}
	limit := min(b.lim.MaxFileBytes, b.bytes)
	buf := bytes.NewBuffer(make([]byte, 0, max(hdr.Size, 0)))
	n, err := io.Copy(buf, io.LimitReader(tr, limit+1))
	b.bytes -= n
	switch {
	case n > b.lim.MaxFileBytes:
		return nil, refuse("%sentry %q: more than MaxFileBytes %d bytes", where, hdr.Name, b.lim.MaxFileBytes)
	case b.bytes < 0:
		return nil, refuse("%sentry %q: files add up to more than MaxDecompressed %d bytes", where, hdr.Name, b.lim.MaxDecompressed)
	case err != nil:
		return nil, b.streamError(sr, where, hdr.Name, err)
	}
	return bytes.TrimPrefix(buf.Bytes(), utf8BOM), nil
}

func (b *budget) other(where, name string) error {
	if b.others <= 0 {
		return refuse("%sentry %q: more than %d directory entries", where, name, b.lim.MaxFiles)
	}
	b.others--
	return nil
}

func (b *budget) streamError(sr *streamReader, where, entry string, err error) error {
	at := ""
	if entry != "" {
		at = fmt.Sprintf(" in or after entry %q", entry)
	}
	if sr.over {
		return refuse("%sdecompressed tar stream%s is over its limit (MaxDecompressed %d plus header allowance for MaxFiles %d)",
			where, at, b.lim.MaxDecompressed, b.lim.MaxFiles)
	}
	return refuse("%struncated or corrupt archive%s: %w", where, at, err)
}

// markParents records the directories above rel, refusing a path that runs
// through a file. It stops at the first directory already known: its own
// parents were checked when it was recorded.
func markParents(seen map[string]seenKind, rel string) error {
	for i := strings.LastIndexByte(rel, '/'); i > 0; i = strings.LastIndexByte(rel[:i], '/') {
		dir := rel[:i]
		switch seen[dir] {
		case seenFile:
			return fmt.Errorf("path runs through file %q", dir)
		case seenDir, seenDirEntry:
			return nil
		}
		seen[dir] = seenDir
	}
	return nil
}

// splitName checks an entry name and returns its elements. Only canonical
// relative paths pass: Helm would clean "a/./b" or "a//b" into another name,
// and a name that means one file to us must mean the same file to every tool
// that later extracts the chart.
func splitName(name string, isDir bool) ([]string, error) {
	switch {
	case name == "":
		return nil, errors.New("empty name")
	case len(name) > maxNameBytes:
		return nil, fmt.Errorf("name is %d bytes, over %d", len(name), maxNameBytes)
	case strings.IndexByte(name, 0) >= 0:
		return nil, errors.New("name has a NUL byte")
	case strings.IndexByte(name, '\\') >= 0:
		return nil, errors.New("name has a backslash")
	case !utf8.ValidString(name):
		return nil, errors.New("name is not UTF-8")
	case strings.HasPrefix(name, "/"):
		return nil, errors.New("absolute path")
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return nil, errors.New("name has a control character")
	}
	if isDir {
		name = strings.TrimSuffix(name, "/")
	}
	elems := strings.Split(name, "/")
	if len(elems) > maxNameElems {
		return nil, fmt.Errorf("path has %d elements, over %d", len(elems), maxNameElems)
	}
	for _, e := range elems {
		switch {
		case e == "..":
			return nil, errors.New(`path has a ".." element`)
		case e == ".":
			return nil, errors.New(`path has a "." element`)
		case e == "":
			return nil, errors.New("path has an empty element")
		case isDrive(e):
			return nil, fmt.Errorf("path has Windows drive element %q", e)
		}
	}
	return elems, nil
}

// isDrive reports "C:"-like elements, which make a path absolute on Windows
// (Helm refuses them after cleaning for the same reason).
func isDrive(e string) bool {
	return len(e) == 2 && e[1] == ':' && ('a' <= e[0] && e[0] <= 'z' || 'A' <= e[0] && e[0] <= 'Z')
}

// isSparse reports PAX-format GNU sparse files, which archive/tar presents as
// regular files; their holes would be decompressed from nothing.
func isSparse(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

func typeName(flag byte) string {
	switch flag {
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "FIFO"
	case tar.TypeCont:
		return "contiguous file"
	case tar.TypeGNUSparse:
		return "GNU sparse"
	default:
		return fmt.Sprintf("type %q", flag)
	}
}
