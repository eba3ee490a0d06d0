package diary

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
)

// Format is an accepted image format.
type Format int

const (
	Unknown Format = iota
	PNG
	JPEG
)

// Ext is the file extension used in object keys.
func (f Format) Ext() string {
	switch f {
	case PNG:
		return "png"
	case JPEG:
		return "jpg"
	}
	return ""
}

// The magic bytes each format starts with.
var (
	pngMagic  = []byte("\x89PNG\r\n\x1a\n")
	jpegMagic = []byte{0xff, 0xd8, 0xff}
)

// Sniff identifies the format from the leading magic bytes. The content
// itself decides, never a file name or a client-supplied content type,
// both of which are trivial to lie about.
func Sniff(b []byte) Format {
	switch {
	case bytes.HasPrefix(b, pngMagic):
		return PNG
	case bytes.HasPrefix(b, jpegMagic):
		return JPEG
	}
	return Unknown
}

// MaxDecodedBytes bounds the memory that decoding one image may take. A
// 4 MiB file can describe a far larger picture (a PNG of one colour
// compresses about a thousandfold), so the file size alone does not bound
// what make-thumbnail has to hold in memory. Checking the header here lets
// save-entry refuse such an image with a 400 up front, instead of accepting
// it and leaving make-thumbnail to run out of its 128 MiB memory limit on
// every retry. Go's garbage collector lets the heap grow to about twice
// what is live, so 48 MiB live stays within 128 MiB with room for the
// source bytes. That admits a 16-megapixel baseline JPEG, the usual output
// of a phone camera.
const MaxDecodedBytes = 48 << 20

// CheckImage checks that b is a PNG or JPEG whose header parses and whose
// decoded size stays within MaxDecodedBytes. It reads only the header, so
// it is cheap enough to run on every upload.
func CheckImage(b []byte) (Format, error) {
	f := Sniff(b)
	var (
		cfg image.Config
		err error
	)
	// Calling the format's own decoder, rather than image.DecodeConfig,
	// means only the format the magic bytes announced is ever parsed.
	switch f {
	case PNG:
		cfg, err = png.DecodeConfig(bytes.NewReader(b))
	case JPEG:
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(b))
	default:
		return Unknown, errors.New("must be a PNG or JPEG image")
	}
	if err != nil {
		return Unknown, fmt.Errorf("is not a readable %s image", f.Ext())
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return Unknown, errors.New("has no pixels")
	}
	bpp := bytesPerPixel(cfg.ColorModel)
	if f == JPEG && !jpegBaseline(b) {
		// A progressive JPEG is decoded in several passes, so the decoder
		// keeps every DCT coefficient as an int32 until the end: four
		// more bytes per pixel for each colour component.
		bpp += 4 * components(cfg.ColorModel)
	}
	if need := int64(cfg.Width) * int64(cfg.Height) * bpp; need > MaxDecodedBytes {
		return Unknown, fmt.Errorf("is too large to process: %d×%d pixels", cfg.Width, cfg.Height)
	}
	return f, nil
}

// bytesPerPixel is how much memory the standard decoders allocate per pixel
// for the colour model they report. YCbCr is counted at its worst case,
// 4:4:4 without chroma subsampling; a CMYK JPEG is decoded into four planes
// and then converted, so it needs both.
func bytesPerPixel(m color.Model) int64 {
	// A palette is a slice; check for it before comparing m with ==,
	// which would panic on two slices.
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	switch m {
	case color.GrayModel, color.AlphaModel:
		return 1
	case color.Gray16Model, color.Alpha16Model:
		return 2
	case color.YCbCrModel:
		return 3
	case color.RGBAModel, color.NRGBAModel:
		return 4
	case color.CMYKModel:
		return 8
	}
	return 8 // RGBA64, NRGBA64 and anything unforeseen: assume the widest
}

// components is the number of colour components a JPEG colour model has.
func components(m color.Model) int64 {
	switch m {
	case color.GrayModel:
		return 1
	case color.CMYKModel:
		return 4
	}
	return 3
}

// jpegBaseline reports whether a JPEG's frame header is baseline or extended
// sequential (SOF0, SOF1), the kinds that decode one block at a time. It
// walks the marker segments up to the first start-of-frame marker. Anything
// it cannot follow counts as not baseline, so the caller budgets for the
// costlier progressive decode: when unsure, assume the expensive case.
func jpegBaseline(b []byte) bool {
	for i := 2; i+4 <= len(b); {
		if b[i] != 0xff {
			return false
		}
		m := b[i+1]
		switch {
		case m == 0xff: // fill byte before a marker
			i++
			continue
		case m == 0xc0 || m == 0xc1:
			return true
		case m >= 0xc2 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc:
			return false // progressive, lossless or arithmetic-coded frame
		case m == 0x01 || (m >= 0xd0 && m <= 0xd8): // markers without a length
			i += 2
			continue
		}
		i += 2 + (int(b[i+2])<<8 | int(b[i+3]))
	}
	return false
}

// Decode decodes a PNG or JPEG after the same checks as CheckImage.
func Decode(b []byte) (image.Image, error) {
	f, err := CheckImage(b)
	if err != nil {
		return nil, fmt.Errorf("image %w", err)
	}
	if f == PNG {
		return png.Decode(bytes.NewReader(b))
	}
	return jpeg.Decode(bytes.NewReader(b))
}

// EncodePNG encodes img as a PNG. Best compression costs little time at
// thumbnail size and makes the stored object smaller.
func EncodePNG(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
