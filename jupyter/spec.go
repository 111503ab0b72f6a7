package jupyter

import (
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
)

// Spec is a kernelspec: how Jupyter starts a kernel
// (https://jupyter-client.readthedocs.io/en/stable/kernels.html#kernel-specs).
type Spec struct {
	Argv          []string          `json:"argv"`
	DisplayName   string            `json:"display_name"`
	Language      string            `json:"language"`
	InterruptMode string            `json:"interrupt_mode"`
	Env           map[string]string `json:"env"`
	Metadata      map[string]any    `json:"metadata"`
}

// InstallSpec writes the kernelspec into dir (…/kernels/NAME), with
// kumo's logo at the sizes Jupyter shows.
func InstallSpec(dir string, spec Spec) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "kernel.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	for _, size := range []int{32, 64} {
		if err := writeLogo(filepath.Join(dir, "logo-"+itoa(size)+"x"+itoa(size)+".png"), size); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "logo-svg.svg"), []byte(logoSVG), 0o644)
}

// logoSVG is kumo's cloud (雲): three white circles on sky blue.
const logoSVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">
<rect width="64" height="64" rx="10" fill="#3b82c4"/>
<circle cx="22" cy="36" r="11" fill="#fff"/><circle cx="34" cy="28" r="14" fill="#fff"/>
<circle cx="45" cy="37" r="10" fill="#fff"/><rect x="14" y="36" width="40" height="11" rx="5" fill="#fff"/>
</svg>
`

// writeLogo draws the same cloud as a PNG of size×size.
func writeLogo(path string, size int) error {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	sky, white := color.NRGBA{0x3b, 0x82, 0xc4, 0xff}, color.NRGBA{0xff, 0xff, 0xff, 0xff}
	s := float64(size) / 64
	circles := [][3]float64{{22, 36, 11}, {34, 28, 14}, {45, 37, 10}}
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			px, py := (float64(x)+0.5)/s, (float64(y)+0.5)/s
			c := sky
			for _, k := range circles {
				if dx, dy := px-k[0], py-k[1]; dx*dx+dy*dy <= k[2]*k[2] {
					c = white
				}
			}
			if px >= 14 && px <= 54 && py >= 36 && py <= 47 {
				c = white
			}
			img.Set(x, y, c)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
