// Command pion_sfu is the benchmarks' anchor: a WHIP/WHEP SFU that forwards the way Broadcast Box does, on
// Pion WebRTC v3. Each room has one TrackLocalStaticRTP per track; the publisher's tracks are read packet by
// packet and written to them, and every viewer's PeerConnection adds both. All peers share one UDP port
// (ICE UDP mux), the agent is ICE-lite, and Pion's default interceptors (NACK, RTCP reports, TWCC) run as
// in Broadcast Box.
//
// It speaks just enough WHIP/WHEP for the benchmark clients: POST /whip?room=R, POST /whep?target_id=R
// (404 while R has no publisher), DELETE on the Location, GET /healthz, and GET /stats ("rtp_in N": RTP
// packets read from publishers, for benchmarks whose clients do not count what they send). It prints
// "LISTENING <port>" on stdout when ready. It is built from Debian's Pion sources by tests/bench/pion_sfu.ts.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3"
)

// room is one publisher's stream: the tracks every viewer is given.
type room struct {
	video     *webrtc.TrackLocalStaticRTP
	audio     *webrtc.TrackLocalStaticRTP
	publisher *webrtc.PeerConnection

	mu          sync.Mutex
	videoSSRC   uint32
	lastPLISent time.Time
}

type sfu struct {
	api *webrtc.API

	mu       sync.Mutex
	rooms    map[string]*room
	sessions map[string]*webrtc.PeerConnection
	nextID   int
}

// maxOfferBytes bounds what a client may post.
const maxOfferBytes = 64 << 10

func newAPI(udp net.PacketConn) (*webrtc.API, error) {
	media := &webrtc.MediaEngine{}
	// H.264 as the benchmark clients offer it: browsers and the light client say constrained baseline
	// (42e01f), GStreamer's payloader copies the stream's SPS (x264's baseline is 42c0xx). Pion matches the
	// profile bytes exactly, so each is registered.
	for i, profile := range []string{"42e01f", "42c01f", "42001f"} {
		if err := media.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType:    webrtc.MimeTypeH264,
				ClockRate:   90000,
				SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + profile,
			},
			PayloadType: webrtc.PayloadType(102 + 2*i),
		}, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	if err := media.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1",
		},
		PayloadType: 111,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	interceptors := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(media, interceptors); err != nil {
		return nil, err
	}
	settings := webrtc.SettingEngine{}
	settings.SetLite(true)
	settings.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	settings.SetICEUDPMux(webrtc.NewICEUDPMux(nil, udp))
	return webrtc.NewAPI(
		webrtc.WithMediaEngine(media),
		webrtc.WithInterceptorRegistry(interceptors),
		webrtc.WithSettingEngine(settings),
	), nil
}

// answer applies an offer and returns the complete answer (no trickle, like the server under test).
func answer(pc *webrtc.PeerConnection, offer string) (string, error) {
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", err
	}
	desc, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(desc); err != nil {
		return "", err
	}
	<-gathered
	return pc.LocalDescription().SDP, nil
}

func (s *sfu) addSession(kind string, pc *webrtc.PeerConnection) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	id := fmt.Sprintf("%d", s.nextID)
	s.sessions[id] = pc
	return "/" + kind + "/" + id
}

// rtpIn counts RTP packets read from publishers.
var rtpIn uint64

// forward copies one remote track into the room's local track, as Broadcast Box's audio and video writers do.
func forward(remote *webrtc.TrackRemote, local *webrtc.TrackLocalStaticRTP) {
	buf := make([]byte, 1500)
	packet := &rtp.Packet{}
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			return
		}
		atomic.AddUint64(&rtpIn, 1)
		if err := packet.Unmarshal(buf[:n]); err != nil {
			continue
		}
		if err := local.WriteRTP(packet); err != nil && err != io.ErrClosedPipe {
			return
		}
	}
}

func (s *sfu) whip(w http.ResponseWriter, r *http.Request, offer string) {
	name := r.URL.Query().Get("room")
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	rm := &room{publisher: pc}
	if rm.video, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264}, "video", name); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if rm.audio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", name); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	pc.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if remote.Kind() == webrtc.RTPCodecTypeVideo {
			rm.mu.Lock()
			rm.videoSSRC = uint32(remote.SSRC())
			rm.mu.Unlock()
			forward(remote, rm.video)
		} else {
			forward(remote, rm.audio)
		}
	})
	sdp, err := answer(pc, offer)
	if err != nil {
		_ = pc.Close()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.rooms[name] = rm
	s.mu.Unlock()
	created(w, s.addSession("whip", pc), sdp)
}

// relayKeyframeRequests reads a viewer's RTCP (which also feeds the NACK responder) and passes PLIs on to the
// publisher, at most one every 500 ms.
func relayKeyframeRequests(sender *webrtc.RTPSender, rm *room) {
	for {
		packets, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range packets {
			if _, ok := p.(*rtcp.PictureLossIndication); !ok {
				continue
			}
			rm.mu.Lock()
			due := time.Since(rm.lastPLISent) > 500*time.Millisecond && rm.videoSSRC != 0
			if due {
				rm.lastPLISent = time.Now()
			}
			ssrc := rm.videoSSRC
			rm.mu.Unlock()
			if due {
				_ = rm.publisher.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
			}
		}
	}
}

func (s *sfu) whep(w http.ResponseWriter, r *http.Request, offer string) {
	s.mu.Lock()
	rm := s.rooms[r.URL.Query().Get("target_id")]
	s.mu.Unlock()
	if rm == nil {
		http.Error(w, "room not live", http.StatusNotFound)
		return
	}
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	for _, track := range []*webrtc.TrackLocalStaticRTP{rm.video, rm.audio} {
		sender, err := pc.AddTrack(track)
		if err != nil {
			_ = pc.Close()
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		go relayKeyframeRequests(sender, rm)
	}
	sdp, err := answer(pc, offer)
	if err != nil {
		_ = pc.Close()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	created(w, s.addSession("whep", pc), sdp)
}

func created(w http.ResponseWriter, location, sdp string) {
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, sdp)
}

func (s *sfu) remove(w http.ResponseWriter, path string) {
	parts := strings.Split(path, "/")
	id := parts[len(parts)-1]
	s.mu.Lock()
	pc := s.sessions[id]
	delete(s.sessions, id)
	for name, rm := range s.rooms {
		if rm.publisher == pc {
			delete(s.rooms, name)
		}
	}
	s.mu.Unlock()
	if pc == nil {
		http.Error(w, "no such session", http.StatusNotFound)
		return
	}
	_ = pc.Close()
	w.WriteHeader(http.StatusOK)
}

func (s *sfu) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/healthz":
		_, _ = io.WriteString(w, "ok\n")
	case r.Method == http.MethodGet && r.URL.Path == "/stats":
		_, _ = fmt.Fprintf(w, "rtp_in %d\n", atomic.LoadUint64(&rtpIn))
	case r.Method == http.MethodDelete && (strings.HasPrefix(r.URL.Path, "/whip/") || strings.HasPrefix(r.URL.Path, "/whep/")):
		s.remove(w, r.URL.Path)
	case r.Method == http.MethodPost && (r.URL.Path == "/whip" || r.URL.Path == "/whep"):
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOfferBytes))
		if err != nil {
			http.Error(w, "offer too large", http.StatusRequestEntityTooLarge)
			return
		}
		if r.URL.Path == "/whip" {
			s.whip(w, r, string(body))
		} else {
			s.whep(w, r, string(body))
		}
	default:
		http.Error(w, "not found", http.StatusNotFound)
	}
}

func main() {
	httpAddr := flag.String("http", "127.0.0.1:0", "HTTP listen address")
	udpAddr := flag.String("udp", "127.0.0.1:0", "the one UDP address all peers share")
	flag.Parse()

	udpListen, err := net.ResolveUDPAddr("udp4", *udpAddr)
	if err != nil {
		log.Fatal(err)
	}
	udp, err := net.ListenUDP("udp4", udpListen)
	if err != nil {
		log.Fatal(err)
	}
	api, err := newAPI(udp)
	if err != nil {
		log.Fatal(err)
	}
	listener, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("LISTENING %d\n", listener.Addr().(*net.TCPAddr).Port)
	s := &sfu{api: api, rooms: map[string]*room{}, sessions: map[string]*webrtc.PeerConnection{}}
	log.Fatal(http.Serve(listener, s))
}
