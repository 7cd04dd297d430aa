"""Word lists behind the demo data: product families, brands, towns and customers (all invented brands)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    """A product family: its share of the catalogue, tracking, case sizes and the words its names use."""

    weight: float
    lot_share: float  # products tracked by lot
    expiry_share: float  # of those, products with a DLC/DDM
    packs: tuple[int, ...]
    items: tuple[str, ...]  # "base name|size;size"
    qualifiers: tuple[str, ...]
    brands: tuple[str, ...]


CATEGORIES = (
    Category(  # fresh: everything by lot and DLC
        0.12, 1.0, 1.0, (6, 8, 12),
        ("Yaourt nature|x4;x8;x12", "Yaourt aux fruits|x4;x8", "Fromage blanc|500 g;1 kg", "Skyr|150 g;450 g",
         "Crème fraîche épaisse|20 cl;50 cl", "Beurre doux|250 g;500 g", "Beurre demi-sel|250 g",
         "Lait frais entier|1 L", "Emmental râpé|200 g;500 g", "Jambon blanc|4 tranches;6 tranches",
         "Lardons fumés|2x100 g", "Camembert|250 g", "Comté|200 g;400 g", "Œufs frais|x6;x12",
         "Pâte feuilletée|230 g", "Salade de carottes râpées|300 g"),
        ("", "bio", "fermier"),
        ("Les Prés Verts", "Laiterie du Vercors", "Ferme des Flandres", "Val d'Ardière", "Le Petit Fermier"),
    ),
    Category(  # frozen: by lot with a DDM
        0.04, 1.0, 0.9, (6, 8, 10, 12),
        ("Petits pois|1 kg", "Haricots verts extra-fins|1 kg;2,5 kg", "Frites allumettes|1 kg;2,5 kg",
         "Pizza margherita|400 g", "Glace vanille|1 L", "Poisson pané|x10", "Épinards hachés|1 kg",
         "Croissants pur beurre|x10;x30"),
        ("", "bio"),
        ("Grand Froid", "Banquise", "Cuisine des Neiges", "Pôle Gourmand"),
    ),
    Category(  # grocery
        0.31, 0.04, 0.5, (6, 10, 12, 20, 24),
        ("Farine T55|1 kg;5 kg", "Sucre en poudre|1 kg", "Riz long grain|500 g;1 kg;5 kg",
         "Pâtes coquillettes|500 g;1 kg", "Pâtes spaghetti|500 g;1 kg", "Huile de tournesol|1 L;5 L",
         "Huile d'olive vierge extra|50 cl;1 L", "Café moulu|250 g;1 kg", "Thé noir|25 sachets;100 sachets",
         "Confiture de fraises|370 g", "Chocolat noir 70 %|100 g;200 g", "Biscuits petit-beurre|200 g",
         "Céréales muesli|500 g;750 g", "Lentilles vertes|500 g", "Sauce tomate|500 g;1 kg",
         "Thon au naturel|140 g;3x80 g", "Moutarde de Dijon|210 g;370 g", "Sel fin|1 kg"),
        ("", "bio", "sélection"),
        ("Maison Dufour", "Terre d'Oc", "Moulin Rivière", "Épicerie du Lac", "Saveurs d'Antan",
         "Le Bon Panier", "Côté Sud", "Grain de Blé"),
    ),
    Category(  # drinks
        0.13, 0.03, 0.5, (6, 12, 24),
        ("Eau minérale|50 cl;1 L;1,5 L", "Eau gazeuse|50 cl;1 L;1,25 L", "Jus d'orange|25 cl;1 L",
         "Jus de pomme|1 L", "Limonade|1,5 L", "Soda cola|33 cl;1,5 L", "Thé glacé pêche|1,5 L",
         "Sirop de grenadine|75 cl", "Bière blonde|25 cl;50 cl", "Cidre brut|75 cl",
         "Vin rouge Côtes-du-Rhône|75 cl", "Lait UHT demi-écrémé|50 cl;1 L"),
        ("", "bio"),
        ("Source des Alpes", "Vallée Claire", "Verger Normand", "Brasserie du Nord", "Monts d'Auvergne",
         "Fontaine Bleue", "Pressoir d'Or", "Bulles de France"),
    ),
    Category(  # household and hygiene (droguerie, parfumerie, hygiène)
        0.23, 0.05, 0.0, (4, 6, 10, 12, 20),
        ("Gel douche|250 ml;500 ml", "Shampooing|250 ml;400 ml", "Savon liquide|300 ml;1 L",
         "Dentifrice|75 ml", "Papier toilette|x6;x12", "Essuie-tout|x2;x4", "Lessive liquide|1,5 L;3 L",
         "Liquide vaisselle|500 ml;1 L", "Nettoyant multi-surfaces|750 ml", "Éponges grattantes|x3;x10",
         "Sacs poubelle 30 L|x20;x50", "Mouchoirs|x10;x15",
         "Adoucissant|1 L;2 L", "Déodorant|150 ml", "Coton-tiges|x200"),
        ("", "écologique", "format familial"),
        ("Clair Matin", "Blanc Net", "Douceur d'Hiver", "Maison Propre", "Eau Vive", "Brin de Lavande",
         "Fraîcheur Marine", "Pur Éclat"),
    ),
    Category(  # warehouse supplies and protective equipment, sold by the unit or the box
        0.17, 0.1, 0.0, (1, 1, 10, 20),
        ("Gants nitrile|taille S;taille M;taille L;taille XL",
         "Gants de manutention|taille 8;taille 9;taille 10",
         "Masques FFP2|boîte de 20;boîte de 50", "Gilet haute visibilité|taille L;taille XL",
         "Ruban adhésif|48 mm x 66 m", "Film étirable|450 mm x 300 m", "Cutter de sécurité|18 mm",
         "Étiquettes thermiques|100 x 150 mm", "Carton double cannelure|40 x 30 x 30 cm;60 x 40 x 40 cm",
         "Chaussures de sécurité|pointure 40;pointure 42;pointure 44", "Palette bois|80 x 120 cm",
         "Casque de chantier|taille unique", "Lunettes de protection|taille unique"),
        ("", "renforcé", "premium"),
        ("ProTect", "Atelier Pro", "Sécuritas Line", "Emballage Express", "Outils du Nord",
         "Manutention Plus"),
    ),
)

# Towns around each warehouse: the destinations it usually serves.
CITIES = {
    "LYS": ("Villeurbanne", "Vénissieux", "Bron", "Caluire-et-Cuire", "Vaulx-en-Velin", "Écully",
            "Oullins", "Givors", "Vienne", "Villefranche-sur-Saône", "Bourgoin-Jallieu", "Saint-Étienne",
            "Grenoble", "Annecy", "Mâcon", "Valence", "Chambéry", "Roanne", "Bourg-en-Bresse", "Meyzieu",
            "Décines-Charpieu"),
    "LIL": ("Roubaix", "Tourcoing", "Villeneuve-d'Ascq", "Lens", "Arras", "Douai", "Valenciennes",
            "Dunkerque", "Calais", "Boulogne-sur-Mer", "Béthune", "Cambrai", "Armentières", "Maubeuge",
            "Hazebrouck", "Wattrelos", "Marcq-en-Barœul", "Saint-Omer", "Liévin"),
}

CUSTOMER_NAMES = (
    "Cuisine centrale de {}", "Clinique du Parc, {}", "Hôtel de la Gare, {}", "Collège Jean-Moulin, {}",
    "Brasserie du Théâtre, {}", "EHPAD Les Tilleuls, {}", "Restaurant Le Bouchon, {}", "Camping des Pins, {}",
)
