package diary

import (
	"image"
	"image/color"
)

// ThumbnailSize is the box a thumbnail must fit in, in pixels.
const ThumbnailSize = 128

// FitSize returns the size of an image of w×h scaled to fit within box×box
// with its aspect ratio kept, rounding to the nearest pixel and never below
// one. Images that already fit are not enlarged: upscaling adds no detail,
// only bytes.
func FitSize(w, h, box int) (int, int) {
	if w <= box && h <= box {
		return w, h
	}
	if w >= h {
		return box, clamp1((h*box + w/2) / w)
	}
	return clamp1((w*box + h/2) / h), box
}

func clamp1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

// Thumbnail scales src down to fit within ThumbnailSize×ThumbnailSize.
//
// It is a box filter written out here rather than golang.org/x/image/draw:
// each destination pixel is the average of the block of source pixels it
// covers, which is what a good downscale needs (no aliasing, every source
// pixel counted once) and is all a thumbnail needs. It keeps the functions
// free of third-party dependencies, so there is nothing extra to pin, scan
// for vulnerabilities or ship in the WebAssembly module.
//
// Colours are averaged premultiplied by alpha, so fully transparent pixels,
// whatever colour they nominally have, do not bleed into their neighbours.
func Thumbnail(src image.Image) *image.RGBA {
	b := src.Bounds()
	dw, dh := FitSize(b.Dx(), b.Dy(), ThumbnailSize)
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	if b.Empty() {
		return dst
	}
	box := newBoxFilter(b.Dx(), b.Dy(), dst)
	if s, ok := src.(*image.YCbCr); ok {
		box.ycbcr(s)
	} else {
		box.rgba(src)
	}
	return dst
}

// boxFilter holds the running sums of one destination row.
type boxFilter struct {
	dst    *image.RGBA
	sw, sh int
	col    []int    // col[sx]: the destination column of source column sx
	cols   []uint64 // cols[dx]: how many source columns fall in dx
	sum    []uint64 // four sums per destination column
	rows   uint64   // source rows added to the current destination row
	dy     int      // the current destination row
	ycc    bool     // sums are 8-bit Y, Cb, Cr rather than 16-bit RGBA
}

func newBoxFilter(sw, sh int, dst *image.RGBA) *boxFilter {
	dw := dst.Rect.Dx()
	f := &boxFilter{
		dst: dst, sw: sw, sh: sh,
		col:  make([]int, sw),
		cols: make([]uint64, dw),
		sum:  make([]uint64, 4*dw),
	}
	// Because dw <= sw, every destination column gets at least one source
	// column, and likewise for rows.
	for sx := range f.col {
		f.col[sx] = sx * dw / sw
		f.cols[f.col[sx]]++
	}
	return f
}

// endRow is called after source row sy has been added. It writes out the
// destination row when the next source row belongs to the next one.
func (f *boxFilter) endRow(sy int) {
	f.rows++
	dh := f.dst.Rect.Dy()
	if sy+1 < f.sh && (sy+1)*dh/f.sh == f.dy {
		return
	}
	row := f.dst.Pix[f.dy*f.dst.Stride:]
	for dx, cols := range f.cols {
		n := cols * f.rows
		s := f.sum[4*dx : 4*dx+4]
		p := row[4*dx : 4*dx+4]
		if f.ycc {
			// Averaging Y, Cb and Cr and converting once per destination
			// pixel, instead of converting every source pixel, saves most
			// of the work on a photo. The conversion is affine, so the
			// result is the same except where it clips, at the extremes
			// of saturation.
			y := uint8((s[0] + n/2) / n)
			cb := uint8((s[1] + n/2) / n)
			cr := uint8((s[2] + n/2) / n)
			p[0], p[1], p[2] = color.YCbCrToRGB(y, cb, cr)
			p[3] = 0xff
		} else {
			for i := range 4 {
				// Round to nearest, then drop from 16 to 8 bits.
				p[i] = uint8(((s[i] + n/2) / n) >> 8)
			}
		}
	}
	clear(f.sum)
	f.rows = 0
	f.dy++
}

// ycbcr adds the pixels of a JPEG's decoded image, reading its planes
// directly: this is the path nearly every photo takes, so it avoids any
// per-pixel call.
func (f *boxFilter) ycbcr(s *image.YCbCr) {
	f.ycc = true
	x0, y0 := s.Rect.Min.X, s.Rect.Min.Y
	// A chroma offset is a row part plus a column part, whatever the
	// subsampling, so the column part can be worked out once.
	cx := make([]int, f.sw)
	c0 := s.COffset(x0, y0)
	for sx := range cx {
		cx[sx] = s.COffset(x0+sx, y0) - c0
	}
	for sy := 0; sy < f.sh; sy++ {
		yRow := s.Y[s.YOffset(x0, y0+sy):]
		cRow := s.COffset(x0, y0+sy)
		for sx, dx := range f.col {
			ci := cRow + cx[sx]
			sum := f.sum[4*dx : 4*dx+3]
			sum[0] += uint64(yRow[sx])
			sum[1] += uint64(s.Cb[ci])
			sum[2] += uint64(s.Cr[ci])
		}
		f.endRow(sy)
	}
}

// rgba adds the pixels of any other image, one row at a time.
func (f *boxFilter) rgba(src image.Image) {
	px := make([]uint32, 4*f.sw)
	b := src.Bounds()
	for sy := 0; sy < f.sh; sy++ {
		readRow(src, b.Min.X, b.Min.Y+sy, px)
		for sx, dx := range f.col {
			s := f.sum[4*dx : 4*dx+4]
			p := px[4*sx : 4*sx+4]
			s[0] += uint64(p[0])
			s[1] += uint64(p[1])
			s[2] += uint64(p[2])
			s[3] += uint64(p[3])
		}
		f.endRow(sy)
	}
}

// readRow fills px with row y of src as 16-bit premultiplied RGBA. The
// types the PNG decoder returns most often are read directly from their
// pixel buffers; going through At for every pixel of a multi-megapixel
// image would box each pixel in an interface and make the thumbnail
// several times slower. Other types take the general path.
func readRow(src image.Image, x0, y int, px []uint32) {
	w := len(px) / 4
	switch s := src.(type) {
	case *image.Gray:
		row := s.Pix[s.PixOffset(x0, y):]
		for i := 0; i < w; i++ {
			v := uint32(row[i]) * 0x101
			px[4*i], px[4*i+1], px[4*i+2], px[4*i+3] = v, v, v, 0xffff
		}
	case *image.RGBA: // already premultiplied
		row := s.Pix[s.PixOffset(x0, y):]
		for i := 0; i < 4*w; i++ {
			px[i] = uint32(row[i]) * 0x101
		}
	case *image.NRGBA:
		row := s.Pix[s.PixOffset(x0, y):]
		for i := 0; i < w; i++ {
			a := uint32(row[4*i+3]) * 0x101
			for c := 0; c < 3; c++ {
				px[4*i+c] = uint32(row[4*i+c]) * 0x101 * a / 0xffff
			}
			px[4*i+3] = a
		}
	default:
		for i := 0; i < w; i++ {
			px[4*i], px[4*i+1], px[4*i+2], px[4*i+3] = src.At(x0+i, y).RGBA()
		}
	}
}
